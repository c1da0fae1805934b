package store

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDirSyncNoticesNewFiles(t *testing.T) {
	dir := t.TempDir()
	d, err := newDirSync(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	if err := d.sync(); err != nil || d.names != nil {
		t.Fatalf("empty dir: names %v, %v", d.names, err)
	}
	for _, name := range []string{"000001.mem", "000002.vlog"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := d.sync(); err != nil || !d.names[name] {
			t.Fatalf("after creating %s: names %v, %v", name, d.names, err)
		}
	}
	// A removal needs no sync: the names seen stay as they were.
	if err := os.Remove(filepath.Join(dir, "000001.mem")); err != nil {
		t.Fatal(err)
	}
	if err := d.sync(); err != nil || len(d.names) != 2 {
		t.Fatalf("after a removal: names %v, %v", d.names, err)
	}
}
