package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
)

// BenchmarkGatewayCoAPFlood starts a gateway-profile node whose peers speak
// CoAP over DTLS, and floods its CoAP port from 10,000 spoofed sources on
// loopback (127.0.0.2-127.0.0.41, a new port each): each sends a DTLS
// ClientHello and a plain CoAP POST to /node/any/receive, and never answers.
// It reports the node's private memory (RssAnon, and Private_* of
// smaps_rollup) before the flood and 3 s after it, and checks that the node
// still serves; it never fails on a figure.
func BenchmarkGatewayCoAPFlood(b *testing.B) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		b.Skip("needs /proc/PID/smaps_rollup")
	}
	hello, err := captureClientHello()
	if err != nil {
		b.Fatal(err)
	}
	// A plain CoAP NON POST /node/any/receive with a small JSON body.
	plain := []byte{0x50, 0x02, 0x12, 0x34, 0xb4, 'n', 'o', 'd', 'e', 0x03, 'a', 'n', 'y', 0x07, 'r', 'e', 'c', 'e', 'i', 'v', 'e', 0xff}
	plain = append(plain, `{"type":"NOTIFY_SUCCESSOR","id":"1","from":{"id":"0000000000000000000000000000000000000001","addr":"coap://127.0.0.1:9"}}`...)
	const sources = 10000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		n := startNode(b, b.TempDir(), "gateway", "--log-level", "warn", "--rpc", "coap", "--auth", "loopback") // the token check is BenchmarkTokenCheck (access)
		var info ringInfo
		getJSON(b, n.URL+"/api/v1/node", &info)
		_, hostport, ok := strings.Cut(info.RPC, "://")
		if !ok || !strings.HasPrefix(info.RPC, "coaps://") {
			b.Fatalf("the node advertises %q, want coaps://", info.RPC)
		}
		target, err := net.ResolveUDPAddr("udp", hostport)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(3 * time.Second) // the figure is "settled", not a synchronisation
		before := privateKB(b, n.Pid())
		b.StartTimer()
		start := time.Now()
		for s := range sources {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(2+s%40))})
			if err != nil {
				b.Fatal(err)
			}
			_, _ = c.WriteToUDP(hello, target)
			_, _ = c.WriteToUDP(plain, target)
			c.Close()
		}
		took := time.Since(start)
		b.StopTimer()
		time.Sleep(3 * time.Second)
		after := privateKB(b, n.Pid())
		hwm, _ := procStatusKB(n.Pid(), "VmHWM")
		if r := ingest(b, n.URL, 1, 10, 10, fmt.Sprintf("flood%d", i)); r.records != 10 {
			b.Fatalf("the node stored %d of 10 readings after the flood", r.records)
		}
		b.ReportMetric(float64(before)/1024, "private-MB-before")
		b.ReportMetric(float64(after)/1024, "private-MB-after")
		b.Logf("gateway node, %d spoofed sources (a ClientHello and a plain CoAP POST each) in %v: private memory %.1f MB before, %.1f MB 3 s after; VmHWM %.1f MB",
			sources, took.Round(time.Millisecond), float64(before)/1024, float64(after)/1024, float64(hwm)/1024)
		n.Stop()
	}
}

// privateKB is the process's private memory: Private_Clean + Private_Dirty
// of /proc/PID/smaps_rollup, in KiB.
func privateKB(tb testing.TB, pid int) int64 {
	tb.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		tb.Fatal(err)
	}
	var kb int64
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:") {
			var v int64
			fmt.Sscan(f[1], &v)
			kb += v
		}
	}
	return kb
}

// captureClientHello returns the first datagram a DTLS client sends: a
// ClientHello without a cookie, which a flood can replay from any source.
func captureClientHello() ([]byte, error) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go func() {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return
		}
		dc, err := dtls.Client(c, ln.LocalAddr(), &dtls.Config{InsecureSkipVerify: true})
		if err != nil {
			c.Close()
			return
		}
		_ = dc.HandshakeContext(ctx) // fails: nobody answers
		dc.Close()
	}()
	_ = ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, _, err := ln.ReadFromUDP(buf)
	if err != nil {
		return nil, fmt.Errorf("no ClientHello captured: %w", err)
	}
	return buf[:n], nil
}
