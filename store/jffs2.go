package store

import (
	"errors"
	"os"
	"path/filepath"
)

// jffs2Magic is the statfs f_type of JFFS2, the OpenWrt flash overlay.
const jffs2Magic = 0x72b6

// ErrJFFS2 is returned by Open for a data directory on JFFS2, where Badger's
// shared mmap fails with EINVAL.
var ErrJFFS2 = errors.New("the data directory is on JFFS2 flash, where Badger cannot map its files; put the data dir on ext4/f2fs (SD card or USB) or tmpfs")

// checkFSType refuses filesystems Badger cannot run on. fsType is the statfs
// f_type of the directory (injected by tests).
func checkFSType(fsType int64) error {
	if fsType == jffs2Magic {
		return ErrJFFS2
	}
	return nil
}

// checkDataDir checks the filesystem that holds dir, or would hold it once
// created: the nearest existing ancestor. Checking before MkdirAll means a
// refused directory leaves nothing behind on flash.
func checkDataDir(dir string) error {
	p, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for {
		if _, err := os.Stat(p); err == nil {
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	t, err := fsType(p)
	if err != nil {
		return err
	}
	return checkFSType(t)
}
