# The secrets library: RE2 patterns of credentials a tool may return, for
# the result rule (data.mcp.authz.result) to redact. mcpauthz adds this
# module to every bundle that does not define package
# mcpauthz.lib.secrets itself (a bundle overrides it by defining it).
#
#   result := {"redact": data.mcpauthz.lib.secrets.redact}
package mcpauthz.lib.secrets

# patterns maps each kind of secret to its RE2 pattern.
patterns := {
	# AWS access key ids: long-term (AKIA) and temporary (ASIA) keys.
	"aws_access_key": `\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`,
	# GitHub tokens: classic (ghp_, gho_, ghu_, ghs_, ghr_) and fine-grained.
	"github_token": `\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{82})\b`,
	# GitLab personal, project and group access tokens.
	"gitlab_token": `\bglpat-[A-Za-z0-9_-]{20,}`,
	# Slack bot, user, app and configuration tokens.
	"slack_token": `\bxox[abposre]-[A-Za-z0-9-]{10,}`,
	# Google API keys.
	"google_api_key": `\bAIza[0-9A-Za-z_-]{35}\b`,
	# JSON Web Tokens: a JSON header and payload, base64url, and a signature.
	"jwt": `\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{16,}`,
	# PEM private key blocks, whole (RSA, EC, OPENSSH, PKCS#8, encrypted).
	"private_key": `-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----`,
	# mcpauthz API keys.
	"mcpk_key": `\bmcpk_[A-Za-z0-9_-]{16,}`,
}

# redact redacts every pattern, each match replaced by [REDACTED:<name>].
redact := [{"pattern": p, "with": sprintf("[REDACTED:%s]", [n]), "name": n} | some n, p in patterns]
