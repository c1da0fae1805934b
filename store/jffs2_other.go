//go:build !linux

package store

// fsType reports no filesystem type: JFFS2 exists only on Linux.
func fsType(string) (int64, error) { return 0, nil }
