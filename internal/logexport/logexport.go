// Package logexport is what the project's log exporters share: a
// rate-limited logger, client TLS, and handing back the part of a batch
// that was not sent, so that the exporter helper retries only that part.
package logexport

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// SampledLogger returns l limited to the first message of each text per 10
// seconds: a target that is down fails every push, and one line a period
// says so without flooding the log.
func SampledLogger(l *zap.Logger) *zap.Logger {
	return l.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, 10*time.Second, 1, 0)
	}))
}

// ClientTLS loads a client TLS configuration; with nothing configured it
// is the system's roots and TLS 1.2 at least.
func ClientTLS(ctx context.Context, cfg configtls.ClientConfig) (*tls.Config, error) {
	c, err := cfg.LoadTLSConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if c == nil {
		c = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// Unsent is the error of a push that failed at record from (in All order):
// the records before it were sent, so only the rest is handed back.
func Unsent(err error, ld plog.Logs, from int) error {
	if from <= 0 {
		return err
	}
	return consumererror.NewLogs(err, From(ld, from))
}

// Retry is the error of a push whose records with retry(i) true failed and
// may succeed later; the others were sent or dropped for good.
func Retry(err error, ld plog.Logs, retry func(i int) bool) error {
	return consumererror.NewLogs(err, Pick(ld, retry))
}
