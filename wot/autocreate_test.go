package wot

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// TestReadingThroughNodePutCreatesThing: a reading that enters through
// node.Put (what POST /api/v1/records calls), not through this layer, creates
// its Thing with a TD derived from it, readable on every node of the ring.
func TestReadingThroughNodePutCreatesThing(t *testing.T) {
	nodes := startRing(t, 2)
	ctx := context.Background()
	if _, err := nodes[0].n.Put(ctx, []ledger.Reading{{Thing: "api-sensor", Data: []byte(`{"lux":310}`)}}, node.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tn := range nodes {
		eventuallyNil(t, 30*time.Second, func() error {
			raw, err := tn.t.ThingTD(ctx, "api-sensor")
			if err != nil {
				return err
			}
			var td map[string]any
			if err := json.Unmarshal(raw, &td); err != nil {
				return err
			}
			props, _ := td["properties"].(map[string]any)
			if _, ok := props["lux"]; !ok {
				return fmt.Errorf("TD on %s has no property lux: %s", tn.addr, raw)
			}
			return nil
		})
	}
}
