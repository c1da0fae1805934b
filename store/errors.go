package store

import "errors"

var (
	// ErrNotFound is returned by reads that find no entry.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt is returned when an entry does not have its kind's layout,
	// such as a key of the wrong length.
	ErrCorrupt = errors.New("store: corrupt entry")
	// ErrTooLarge is returned by Write for a value or name that cannot be stored.
	ErrTooLarge = errors.New("store: too large")
)
