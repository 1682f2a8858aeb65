// Package mlog stands in for monis.app/mlog v0.0.2, which upstream's driver imports but the Go module
// proxy reachable here does not serve. It keeps the part of the API upstream's main.go and server.go call,
// with the same effect: klog's verbosity and its text or JSON format (component-base's loggers), set once.
package mlog

import (
	"context"
	"fmt"
	"os"

	"k8s.io/component-base/featuregate"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/klog/v2"
)

// LogFormat is a component-base logging format name.
type LogFormat string

const (
	FormatText LogFormat = "text"
	FormatJSON LogFormat = "json"
)

// ValidateAndSetKlogLevelAndFormatGlobally applies the verbosity and the format to klog.
func ValidateAndSetKlogLevelAndFormatGlobally(_ context.Context, level klog.Level, format LogFormat) error {
	config := logsapi.NewLoggingConfiguration()
	config.Format = string(format)
	config.Verbosity = logsapi.VerbosityLevel(level)
	gate := featuregate.NewFeatureGate()
	if err := logsapi.AddFeatureGates(gate); err != nil {
		return err
	}
	return logsapi.ValidateAndApply(config, gate)
}

// Setup returns the function that flushes the logs at exit.
func Setup() func() { return klog.Flush }

// Error logs err with msg.
func Error(msg string, err error, keysAndValues ...any) { klog.ErrorS(err, msg, keysAndValues...) }

// Fatal logs err and exits with status 1.
func Fatal(err error, keysAndValues ...any) {
	klog.ErrorS(err, "fatal error", keysAndValues...)
	klog.Flush()
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
