package store

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// badgerLogger adapts zap to Badger's Logger. Badger logs every table open,
// flush and compaction at INFO; on a gateway that is noise, so INFO goes to
// debug. Warnings and errors keep their level.
type badgerLogger struct {
	log *zap.Logger
}

func newBadgerLogger(log *zap.Logger) badgerLogger {
	if log == nil {
		log = zap.NewNop()
	}
	// Skip one frame so that the caller shown is Badger's, not this adapter.
	return badgerLogger{log: log.Named("badger").WithOptions(zap.AddCallerSkip(1))}
}

func (l badgerLogger) Errorf(f string, args ...any)   { l.at(zapcore.ErrorLevel, f, args) }
func (l badgerLogger) Warningf(f string, args ...any) { l.at(zapcore.WarnLevel, f, args) }
func (l badgerLogger) Infof(f string, args ...any)    { l.at(zapcore.DebugLevel, f, args) }
func (l badgerLogger) Debugf(f string, args ...any)   { l.at(zapcore.DebugLevel, f, args) }

func (l badgerLogger) at(level zapcore.Level, f string, args []any) {
	// Check first: formatting Badger's chatter costs more than discarding it.
	if ce := l.log.Check(level, ""); ce != nil {
		ce.Message = strings.TrimRight(fmt.Sprintf(f, args...), "\n")
		ce.Write()
	}
}
