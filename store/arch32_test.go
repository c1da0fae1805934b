package store

import (
	"testing"

	"github.com/dgraph-io/ristretto/v2/z"
)

// TestAllocatorKeepsEarlierSlices guards the 32-bit fix scripts/gateway/README.md describes:
// ristretto's z.Allocator computes uint64((bufIdx+1)<<32) in int, which is 0
// on 32-bit targets, so after growing it hands out its first buffer again and
// overwrites earlier allocations; Badger then loses keys in flushed tables.
// On 386 or mipsle this test fails unless the build carries the one-line
// patch (convert before shifting).
func TestAllocatorKeepsEarlierSlices(t *testing.T) {
	a := z.NewAllocator(1024, "store-test")
	defer a.Release()
	var bufs [][]byte
	for i := range 200 {
		b := a.Allocate(100)
		for j := range b {
			b[j] = byte(i)
		}
		bufs = append(bufs, b)
	}
	for i, b := range bufs {
		for _, c := range b {
			if c != byte(i) {
				t.Fatalf("allocation %d was overwritten: the ristretto 32-bit allocator patch is missing", i)
			}
		}
	}
}
