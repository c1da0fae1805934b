package wot

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Benchmarks of the live path, on rings of real nodes in one process
// (local profile, loopback WebSocket). They print figures; they never fail
// on a timing. Run: go test -run X -bench . -benchtime 2000x ./wot/

// BenchmarkDeviceSend: durable readings per second through WebSocket
// device connections (/object/{id}/send) on one node, each device reading
// its receipts (a receipt means durable on the owner). b.N readings in all.
func BenchmarkDeviceSend(b *testing.B) {
	for _, conns := range []int{1, 32} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			nodes := startRing(b, 1)
			a := nodes[0]
			devs := make([]*websocket.Conn, conns)
			for i := range devs {
				devs[i] = dial(b, a.ws(fmt.Sprintf("/object/bench-%d/send", i)))
			}
			per := (b.N + conns - 1) / conns
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for _, c := range devs {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"n":%d,"celsius":21.5}`, i))) != nil {
							b.Error("write failed")
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						c.SetReadDeadline(time.Now().Add(2 * time.Minute))
						if _, _, err := c.ReadMessage(); err != nil {
							b.Errorf("receipt %d: %v", i, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(per*conns)/el.Seconds(), "readings/s")
			b.Logf("%d readings over %d connections in %v (GOMAXPROCS %d)", per*conns, conns, el.Round(time.Millisecond), runtime.GOMAXPROCS(0))
		})
	}
}

// BenchmarkWriteToViewer: latency from a device's frame to the record
// reaching a viewer, one reading at a time, on one node and across rings
// of 3 and 5 (device and viewer on different nodes, the Thing's rendezvous
// on a third).
func BenchmarkWriteToViewer(b *testing.B) {
	for _, size := range []int{1, 3, 5} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) {
			nodes := startRing(b, size)
			dev, view := nodes[0], nodes[0]
			thing := "latency"
			if size > 1 {
				view = nodes[1]
				thing = thingWithRendezvous(b, dev, "latency", dev, view)
			}
			viewer := dial(b, view.ws("/object/"+thing+"/viewer"))
			device := dial(b, dev.ws("/object/"+thing+"/send"))
			go func() { // receipts, read and dropped
				for {
					if _, _, err := device.ReadMessage(); err != nil {
						return
					}
				}
			}()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := device.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
					b.Fatal(err)
				}
				viewer.SetReadDeadline(time.Now().Add(time.Minute))
				if _, _, err := viewer.ReadMessage(); err != nil {
					b.Fatalf("viewer: %v", err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			ms := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}
