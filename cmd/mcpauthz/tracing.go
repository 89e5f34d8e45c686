package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"
)

// tracingShutdownTimeout bounds the flush of the spans still buffered when
// the server stops.
const tracingShutdownTimeout = 5 * time.Second

// newTracerProvider builds the OpenTelemetry SDK that exports the engine's
// spans over OTLP/gRPC to tracing.otlp_endpoint, in batches, from a
// goroutine of its own: a decision only hands its spans over. The
// exporter connects lazily and retries, so a collector that is down does
// not stop the server (spans are dropped when the batch queue is full).
func newTracerProvider(ctx context.Context, c *TracingConfig, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	// The SDK reports failed exports to one process-wide handler (the
	// only way it offers); they go to the service log, in its format,
	// instead of the standard library's logger.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: exporting spans failed", "endpoint", c.OTLPEndpoint, "error", err)
	}))
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.OTLPEndpoint)}
	switch {
	case c.Insecure:
		opts = append(opts, otlptracegrpc.WithInsecure())
	case c.CAFile != "":
		creds, err := credentials.NewClientTLSFromFile(c.CAFile, "")
		if err != nil {
			return nil, fmt.Errorf("tracing.ca_file: %w", err)
		}
		opts = append(opts, otlptracegrpc.WithTLSCredentials(creds))
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", c.ServiceName),
		attribute.String("service.version", version))
	// A caller's sampling decision is followed; new traces are sampled at
	// the ratio.
	sampler := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(c.SampleRatio))
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(sampler)), nil
}

// shutdownTracing flushes the spans still buffered and stops the exporter.
func shutdownTracing(tp *sdktrace.TracerProvider) error {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}
