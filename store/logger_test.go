package store

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestBadgerLogger(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := newBadgerLogger(zap.New(core))
	l.Infof("All %d tables opened\n", 3)
	l.Debugf("flush")
	l.Warningf("slow %s", "disk")
	l.Errorf("bad")
	want := []struct {
		level zapcore.Level
		msg   string
	}{
		{zapcore.DebugLevel, "All 3 tables opened"},
		{zapcore.DebugLevel, "flush"},
		{zapcore.WarnLevel, "slow disk"},
		{zapcore.ErrorLevel, "bad"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg || got[i].LoggerName != "badger" {
			t.Errorf("entry %d = %v %q (%s), want %v %q", i, got[i].Level, got[i].Message, got[i].LoggerName, w.level, w.msg)
		}
	}
	newBadgerLogger(nil).Infof("no logger is fine")
}
