package store

import (
	"testing"

	"github.com/dgraph-io/badger/v4/options"
)

func TestProfiles(t *testing.T) {
	for name, o := range map[string]Options{"gateway": GatewayOptions(), "laptop": LaptopOptions(), "local": LocalOptions()} {
		t.Run(name, func(t *testing.T) {
			if o.Profile != name {
				t.Errorf("Profile = %q", o.Profile)
			}
			// Badger refuses a value threshold above 15 % of the memtable.
			if o.ValueThreshold > o.MemTableSize*15/100 {
				t.Errorf("ValueThreshold %d > 15%% of MemTableSize %d", o.ValueThreshold, o.MemTableSize)
			}
			if o.NumCompactors < 2 {
				t.Errorf("NumCompactors = %d; Badger rejects 1", o.NumCompactors)
			}
			s, err := Open(t.TempDir(), o, nil)
			if err != nil {
				t.Fatal(err)
			}
			mustWrite(t, s, Write{Records: []Record{testRecord(1)}})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGatewayProfile pins the low-memory options measured for a 128 MB gateway.
func TestGatewayProfile(t *testing.T) {
	o := GatewayOptions()
	want := Options{
		Profile:                 "gateway",
		MemTableSize:            2 << 20,
		NumMemtables:            2,
		ValueThreshold:          o.ValueThreshold,
		ValueLogFileSize:        16 << 20,
		BaseTableSize:           1 << 20,
		TableSizeMultiplier:     1,
		BaseLevelSize:           4 << 20,
		NumLevelZeroTables:      2,
		NumLevelZeroTablesStall: 4,
		NumCompactors:           2,
		BlockCacheSize:          o.BlockCacheSize,
		IndexCacheSize:          0,
		NoCompression:           true,
	}
	if o != want {
		t.Fatalf("gateway = %+v\nwant      %+v", o, want)
	}
	if o.BlockCacheSize > 1<<20 || o.BlockCacheSize <= 0 {
		t.Errorf("BlockCacheSize = %d, want ≤ 1 MiB", o.BlockCacheSize)
	}
	bo := badgerOptions("/x", o.withDefaults(32), nil)
	if !bo.SyncWrites || bo.DetectConflicts || bo.MetricsEnabled {
		t.Errorf("SyncWrites %v DetectConflicts %v MetricsEnabled %v", bo.SyncWrites, bo.DetectConflicts, bo.MetricsEnabled)
	}
	if bo.ValueLogFileSize != 16<<20 || bo.MemTableSize != 2<<20 || bo.IndexCacheSize != 0 ||
		bo.TableSizeMultiplier != 1 || bo.Compression != options.None {
		t.Errorf("badger options differ from the profile: %+v", bo)
	}
}

func TestWithDefaults(t *testing.T) {
	laptop := LaptopOptions()
	zero := Options{}.withDefaults(64)
	zero.Profile = "laptop"
	if zero != laptop {
		t.Errorf("zero options = %+v, want laptop %+v", zero, laptop)
	}
	// On 32-bit, Badger's 2 GiB value-log map fails: the value log is bounded
	// there, and a profile that already fits is left alone.
	if got := (Options{}).withDefaults(32).ValueLogFileSize; got != max32BitValueLog {
		t.Errorf("32-bit default ValueLogFileSize = %d", got)
	}
	if got := (Options{ValueLogFileSize: 1<<30 - 1}).withDefaults(32).ValueLogFileSize; got != max32BitValueLog {
		t.Errorf("32-bit 1 GiB ValueLogFileSize = %d", got)
	}
	if got := (Options{ValueLogFileSize: 1<<30 - 1}).withDefaults(64).ValueLogFileSize; got != 1<<30-1 {
		t.Errorf("64-bit 1 GiB ValueLogFileSize = %d", got)
	}
	gw := GatewayOptions()
	if got := gw.withDefaults(32); got != gw {
		t.Errorf("32-bit gateway = %+v, want %+v", got, gw)
	}
}
