package rpc

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flownode/flownode/network"
)

// BenchmarkTLSHandshake measures one mutually authenticated TLS 1.3
// handshake between two members, over an in-memory pipe: the cryptographic
// cost alone (X25519 or hybrid key exchange, two ed25519 signatures, two
// membership checks). Run it under qemu-mipsel for the gateway's figure.
func BenchmarkTLSHandshake(b *testing.B) {
	a, _ := network.NewAuthority("bench", testMining)
	ma, mb := newMember(b, a), newMember(b, a)
	b.ReportAllocs()
	for b.Loop() {
		c1, c2 := net.Pipe()
		var got1, got2 atomic.Value
		client := tls.Client(c1, ma.auth.tlsConfig(false, mb.id.ID.Hex(), &got1))
		server := tls.Server(c2, mb.auth.tlsConfig(true, "", &got2))
		done := make(chan error, 1)
		go func() { done <- server.Handshake() }()
		if err := client.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
}

// BenchmarkWSConnect measures a fresh connection and its first call: TCP,
// the WebSocket upgrade and, with auth, the TLS handshake.
func BenchmarkWSConnect(b *testing.B) {
	a, _ := network.NewAuthority("bench", testMining)
	for _, auth := range []bool{false, true} {
		name := "plain"
		if auth {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			var srvAs, cliAs func(*WSConfig)
			if auth {
				srvAs, cliAs = newMember(b, a).as, newMember(b, a).as
			} else {
				srvAs, cliAs = func(*WSConfig) {}, func(*WSConfig) {}
			}
			s := startWS(b, 2, "127.0.0.1:0", echo, srvAs)
			for b.Loop() {
				c := startWS(b, 1, "127.0.0.1:0", echo, cliAs)
				env := request(c.self, 1, `{}`)
				env.To = s.self
				if _, err := c.Call(context.Background(), s.self.Addr, env); err != nil {
					b.Fatal(err)
				}
				c.stop()
			}
		})
	}
}

// BenchmarkAuthRoundTrip is BenchmarkRoundTrip's ws case with peers that
// authenticate: the cost of TLS on an open connection.
func BenchmarkAuthRoundTrip(b *testing.B) {
	payload := `"` + strings.Repeat("x", 298) + `"`
	a, _ := network.NewAuthority("bench", testMining)
	for _, conc := range []int{1, 16} {
		name := "ws-tls/seq"
		if conc > 1 {
			name = "ws-tls/conc16"
		}
		b.Run(name, func(b *testing.B) {
			c := startWS(b, 1, "127.0.0.1:0", echo, newMember(b, a).as)
			s := startWS(b, 2, "127.0.0.1:0", echo, newMember(b, a).as)
			roundTrips(b, c, c.self, s.self.Addr, payload, conc)
		})
	}
}
