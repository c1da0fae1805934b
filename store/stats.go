package store

import "sync/atomic"

// Stats are counters since Open, for /metrics.
type Stats struct {
	Writes  uint64 // Write calls made durable
	Failed  uint64 // Write calls whose commit failed
	Records uint64 // records made durable
	Blocks  uint64 // blocks made durable
	// Groups counts durable Badger commits; each costs one sync of the
	// memtable WAL, one of the value log and one of the directory.
	Groups uint64
	// MeanGroupSize is Writes per group: how many writes shared a sync.
	MeanGroupSize float64
}

type counters struct {
	writes, failed, records, blocks, groups atomic.Uint64
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Writes:  s.stats.writes.Load(),
		Failed:  s.stats.failed.Load(),
		Records: s.stats.records.Load(),
		Blocks:  s.stats.blocks.Load(),
		Groups:  s.stats.groups.Load(),
	}
	if st.Groups > 0 {
		st.MeanGroupSize = float64(st.Writes) / float64(st.Groups)
	}
	return st
}
