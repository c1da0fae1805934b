package wot

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRegistry measures the registry's operations on a 3-node ring in
// this process (WebSocket RPC on loopback): a TD PUT (a ring read, then a
// put), a read from the ring (the cache bypassed), a read from the cache,
// and a listing of every Thing.
func BenchmarkRegistry(b *testing.B) {
	r := startTDRing(b, 3)
	a, other := r.nodes[0], r.nodes[1]
	ctx := context.Background()
	td := func(i int) map[string]any {
		m, err := decodeTD([]byte(strings.Replace(lampTD, lampID, fmt.Sprintf("urn:dev:bench-%d", i), 1)))
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	const things = 100
	for i := 0; i < things; i++ {
		if _, err := a.things.putTD(ctx, fmt.Sprintf("urn:dev:bench-%d", i), td(i), false); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := a.things.putTD(ctx, fmt.Sprintf("urn:dev:bench-%d", i%things), td(i%things), false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-ring", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, err := other.things.reg.latest(ctx, fmt.Sprintf("urn:dev:bench-%d", i%things)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("get-cached", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := other.things.ThingTD(ctx, fmt.Sprintf("urn:dev:bench-%d", i%things)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(fmt.Sprintf("list-%d", things), func(b *testing.B) {
		for b.Loop() {
			page, _, err := other.things.reg.list(ctx, 0, maxListLimit)
			if err != nil || len(page) < things {
				b.Fatalf("%d Things listed: %v", len(page), err)
			}
		}
	})
}
