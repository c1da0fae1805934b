package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkGatewayDevices starts a gateway-profile node and connects 200
// devices to it over WebSocket (/object/{id}/send), each sending readings one
// at a time and waiting for its receipt, while 200 viewers follow the same
// Things (/object/{id}/viewer). It reports the node's private memory (Private_*
// of smaps_rollup) before, with everyone connected after the readings, and
// the high-water mark, and the durable readings/s over the 200 connections;
// it never fails on a figure.
func BenchmarkGatewayDevices(b *testing.B) {
	const devices, perDevice = 200, 20
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		n := startNode(b, b.TempDir(), "gateway", "--log-level", "warn", "--auth", "loopback") // the token check is BenchmarkTokenCheck (access)
		host := strings.TrimPrefix(n.URL, "http://")
		time.Sleep(3 * time.Second) // the figure is "settled", not a synchronisation
		before := privateKB(b, n.Pid())

		dial := func(path string) *websocket.Conn {
			c, _, err := websocket.DefaultDialer.Dial("ws://"+host+path, nil)
			if err != nil {
				b.Fatalf("dial %s: %v", path, err)
			}
			return c
		}
		viewers := make([]*websocket.Conn, devices)
		sends := make([]*websocket.Conn, devices)
		for d := range devices {
			viewers[d] = dial(fmt.Sprintf("/object/gw-dev-%d/viewer", d))
			sends[d] = dial(fmt.Sprintf("/object/gw-dev-%d/send", d))
		}
		var seen sync.WaitGroup
		for d := range devices {
			seen.Add(1)
			go func(c *websocket.Conn) { // each viewer reads its Thing's records
				defer seen.Done()
				c.SetReadDeadline(time.Now().Add(2 * time.Minute))
				for range perDevice {
					if _, _, err := c.ReadMessage(); err != nil {
						return
					}
				}
			}(viewers[d])
		}
		connected := privateKB(b, n.Pid())
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, devices)
		for d := range devices {
			wg.Add(1)
			go func(d int, c *websocket.Conn) {
				defer wg.Done()
				c.SetReadDeadline(time.Now().Add(2 * time.Minute))
				for r := range perDevice {
					if err := c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"temperature":%d.5,"device":%d}`, r, d))); err != nil {
						errs <- err
						return
					}
					if _, m, err := c.ReadMessage(); err != nil || !strings.Contains(string(m), "txID") {
						errs <- fmt.Errorf("device %d reading %d: %s %v", d, r, m, err)
						return
					}
				}
			}(d, sends[d])
		}
		wg.Wait()
		took := time.Since(start)
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		seen.Wait()
		after := privateKB(b, n.Pid())
		hwm, _ := procStatusKB(n.Pid(), "VmHWM")
		for d := range devices {
			sends[d].Close()
			viewers[d].Close()
		}
		b.ReportMetric(float64(devices*perDevice)/took.Seconds(), "readings/s")
		b.ReportMetric(float64(after)/1024, "private-MB")
		b.Logf("gateway node, %d WebSocket devices and %d viewers: %d readings in %v (%.0f/s); private memory %.1f MB idle, %.1f MB connected, %.1f MB after the readings; VmHWM %.1f MB",
			devices, devices, devices*perDevice, took.Round(time.Millisecond), float64(devices*perDevice)/took.Seconds(),
			float64(before)/1024, float64(connected)/1024, float64(after)/1024, float64(hwm)/1024)
		n.Stop()
	}
}
