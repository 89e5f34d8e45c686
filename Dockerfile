# syntax=docker/dockerfile:1
# mcpauthz as a container image: `make image` (docker build -t
# ghcr.io/mcpauthz/mcpauthz:latest .). Two stages: the Go toolchain builds a
# static binary (no cgo), and the image holds that binary alone on
# distroless/static, running as the non-root user 65532 with no shell.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build has no .git (see .dockerignore): version and commit come in as
# arguments (make image passes them).
ARG VERSION=dev
ARG COMMIT=
RUN CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.buildCommit=${COMMIT}" \
      -o /out/mcpauthz ./cmd/mcpauthz

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcpauthz /usr/local/bin/mcpauthz
USER 65532:65532
# 9191: gRPC (ext_authz, Decision API, health); 8181: HTTP (healthz,
# readyz, metrics, status, resource metadata, AuthZEN).
EXPOSE 9191 8181
ENTRYPOINT ["/usr/local/bin/mcpauthz"]
# In a container the listeners bind every interface (the defaults are
# loopback). With no --config and no --bundle the embedded policy is served.
CMD ["serve", "--grpc-addr=:9191", "--http-addr=:8181"]
