package store

import (
	"io"
	"os"
)

// dirSync makes the directory entries of files Badger creates durable.
//
// Badger syncs a new .mem WAL or .vlog file's data but not the directory
// entry that names it: ristretto's z.OpenMmapFileUsing means to SyncDir a new
// file but tests the size after truncating it, so never does. ext4 (journal
// ordering, or sync_parent without a journal) and f2fs (fsync recovers the
// dentry) make the entry durable anyway; syncing the directory ourselves
// keeps that true on any filesystem. A directory fsync costs a device cache
// flush (~56 µs here, more on an SD card), so it is done only when the
// directory has a name it did not have at the previous check (~8 µs).
type dirSync struct {
	f     *os.File
	names map[string]bool
}

func newDirSync(dir string) (*dirSync, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	return &dirSync{f: f}, nil
}

// sync fsyncs the directory if a file appeared in it since the last call.
func (d *dirSync) sync() error {
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return err
	}
	fresh := false
	for _, n := range names {
		if !d.names[n] {
			fresh = true
			break
		}
	}
	if !fresh {
		return nil
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	d.names = make(map[string]bool, len(names))
	for _, n := range names {
		d.names[n] = true
	}
	return nil
}

func (d *dirSync) close() error { return d.f.Close() }
