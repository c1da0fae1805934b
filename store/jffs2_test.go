package store

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCheckFSType(t *testing.T) {
	err := checkFSType(0x72b6)
	if !errors.Is(err, ErrJFFS2) {
		t.Fatalf("JFFS2: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"JFFS2", "ext4/f2fs", "SD card or USB", "tmpfs"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not mention %q", msg, want)
		}
	}
	if strings.Count(msg, ".") > 0 {
		t.Errorf("message %q is not one sentence", msg)
	}
	for _, ok := range []int64{0xef53 /* ext4 */, 0xf2f52010 /* f2fs */, 0x01021994 /* tmpfs */, 0} {
		if err := checkFSType(ok); err != nil {
			t.Errorf("type %#x: %v", ok, err)
		}
	}
}

func TestCheckDataDir(t *testing.T) {
	// A directory that does not exist yet is checked through its parent.
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := checkDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		typ, err := fsType(filepath.Dir(filepath.Dir(dir)))
		if err != nil || typ == 0 || typ == jffs2Magic {
			t.Fatalf("fsType = %#x, %v", typ, err)
		}
	}
}
