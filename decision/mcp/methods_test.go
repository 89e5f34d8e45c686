package mcp

import "testing"

func TestIsRequestMethod(t *testing.T) {
	tests := map[string]struct {
		method string
		want   bool
	}{
		"tools_call":               {"tools/call", true},
		"tools_list":               {"tools/list", true},
		"resources_read":           {"resources/read", true},
		"prompts_get":              {"prompts/get", true},
		"ping":                     {"ping", true},
		"server_discover":          {"server/discover", true},
		"subscriptions_listen":     {"subscriptions/listen", true},
		"tasks_cancel":             {"tasks/cancel", true},
		"elicitation_create":       {"elicitation/create", true},
		"initialized_notification": {"notifications/initialized", false},
		"cancelled_notification":   {"notifications/cancelled", false},
		"progress_notification":    {"notifications/progress", false},
		"case_variant":             {"Tools/call", false},
		"unknown_method":           {"x/y", false},
		"empty":                    {"", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := IsRequestMethod(tc.method); got != tc.want {
				t.Errorf("IsRequestMethod(%q) = %v, want %v", tc.method, got, tc.want)
			}
		})
	}
}
