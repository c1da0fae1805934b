package store

import (
	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"go.uber.org/zap"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Options are the Badger sizes the store opens with. Get them from
// GatewayOptions, LaptopOptions or LocalOptions; a zero field takes the
// laptop profile's value.
type Options struct {
	// Profile names the profile these options came from, for logs.
	Profile string

	MemTableSize            int64
	NumMemtables            int
	ValueThreshold          int64 // values this large or larger go to the value log
	ValueLogFileSize        int64 // Badger maps 2× this per value-log file
	BaseTableSize           int64
	TableSizeMultiplier     int // table size grows by this per level below the base level
	BaseLevelSize           int64
	NumLevelZeroTables      int
	NumLevelZeroTablesStall int
	NumCompactors           int // Badger rejects 1
	BlockCacheSize          int64
	IndexCacheSize          int64
	// NoCompression stores LSM blocks uncompressed (Badger's default is Snappy):
	// blocks are then read in place from the mapped table files instead of
	// being decompressed into heap buffers, and table builders hold one copy
	// of each block instead of two.
	NoCompression bool
}

// GatewayOptions is the low-memory set measured on a 128 MB MIPS gateway (see
// the README, "The gateway").
func GatewayOptions() Options {
	return Options{
		Profile:                 "gateway",
		MemTableSize:            2 * mib,
		NumMemtables:            2,
		ValueThreshold:          256, // records go to the value log: small LSM tables keep compaction memory low
		ValueLogFileSize:        16 * mib,
		BaseTableSize:           1 * mib,
		TableSizeMultiplier:     1,
		BaseLevelSize:           4 * mib,
		NumLevelZeroTables:      2,
		NumLevelZeroTablesStall: 4,
		NumCompactors:           2,
		BlockCacheSize:          1 * mib,
		IndexCacheSize:          0,
		NoCompression:           true,
	}
}

// LaptopOptions is Badger's defaults with the memory-hungry ones bounded; a
// zero field of any Options takes its value here.
func LaptopOptions() Options {
	return Options{
		Profile:                 "laptop",
		MemTableSize:            64 * mib,
		NumMemtables:            3,
		ValueThreshold:          1 * mib,
		ValueLogFileSize:        256 * mib,
		BaseTableSize:           2 * mib,
		TableSizeMultiplier:     2,
		BaseLevelSize:           10 * mib,
		NumLevelZeroTables:      5,
		NumLevelZeroTablesStall: 15,
		NumCompactors:           4,
		BlockCacheSize:          64 * mib,
		IndexCacheSize:          0,
	}
}

// LocalOptions is laptop with small memtables, so that tests flush, split
// transactions and open quickly.
func LocalOptions() Options {
	return Options{
		Profile:                 "local",
		MemTableSize:            2 * mib,
		NumMemtables:            2,
		ValueThreshold:          32 * kib,
		ValueLogFileSize:        16 * mib,
		BaseTableSize:           1 * mib,
		TableSizeMultiplier:     2,
		BaseLevelSize:           4 * mib,
		NumLevelZeroTables:      5,
		NumLevelZeroTablesStall: 15,
		NumCompactors:           2,
		BlockCacheSize:          4 * mib,
		IndexCacheSize:          0,
	}
}

// max32BitValueLog bounds the value-log file size on 32-bit targets. Badger
// maps each value-log file at twice its size; its default (1 GiB → 2 GiB map)
// fails with ENOMEM on 32-bit MIPS, and even 512 MiB is most of the address
// space a gateway process has.
const max32BitValueLog = 64 * mib

// withDefaults fills zero fields from the laptop profile and bounds the value
// log on targets whose int has intSize bits (strconv.IntSize in production,
// injected by tests).
func (o Options) withDefaults(intSize int) Options {
	d := LaptopOptions()
	if o.Profile == "" {
		o.Profile = "custom"
	}
	setInt64 := func(v *int64, def int64) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setInt64(&o.MemTableSize, d.MemTableSize)
	setInt(&o.NumMemtables, d.NumMemtables)
	setInt64(&o.ValueThreshold, d.ValueThreshold)
	setInt64(&o.ValueLogFileSize, d.ValueLogFileSize)
	setInt64(&o.BaseTableSize, d.BaseTableSize)
	setInt(&o.TableSizeMultiplier, d.TableSizeMultiplier)
	setInt64(&o.BaseLevelSize, d.BaseLevelSize)
	setInt(&o.NumLevelZeroTables, d.NumLevelZeroTables)
	setInt(&o.NumLevelZeroTablesStall, d.NumLevelZeroTablesStall)
	setInt(&o.NumCompactors, d.NumCompactors)
	setInt64(&o.BlockCacheSize, d.BlockCacheSize)
	if intSize == 32 && o.ValueLogFileSize > max32BitValueLog {
		o.ValueLogFileSize = max32BitValueLog
	}
	return o
}

// badgerOptions turns o, already through withDefaults, into Badger's options
// for dir.
//
// SyncWrites is always on: every commit msyncs the memtable WAL and the value
// log before it returns, which is what makes a group commit durable (see
// commit.go for why db.Sync after unsynced writes is not enough).
func badgerOptions(dir string, o Options, log *zap.Logger) badger.Options {
	bo := badger.DefaultOptions(dir)
	bo.TableSizeMultiplier = o.TableSizeMultiplier // no With method
	if o.NoCompression {
		bo = bo.WithCompression(options.None)
	}
	return bo.
		WithLogger(newBadgerLogger(log)).
		WithSyncWrites(true).
		WithDetectConflicts(false). // one committer goroutine; nothing to conflict with
		WithMetricsEnabled(false).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithValueThreshold(o.ValueThreshold).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithBaseTableSize(o.BaseTableSize).
		WithBaseLevelSize(o.BaseLevelSize).
		WithNumLevelZeroTables(o.NumLevelZeroTables).
		WithNumLevelZeroTablesStall(o.NumLevelZeroTablesStall).
		WithNumCompactors(o.NumCompactors).
		WithBlockCacheSize(o.BlockCacheSize).
		WithIndexCacheSize(o.IndexCacheSize)
}
