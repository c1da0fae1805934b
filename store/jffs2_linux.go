//go:build linux

package store

import "syscall"

// fsType returns the statfs f_type of the filesystem holding path.
func fsType(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Type), nil //nolint:unconvert // Type is int32 or int64 by GOARCH
}
