package main

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestOutsiderInjectsNothing: a client that does not authenticate, speaking
// the plain wire format to every node's WebSocket endpoint and CoAP port,
// gets no message handled. It replays a genuine record in a forged
// replicate (from its owner), and sends a NOTIFY_SUCCESSOR from a made-up ID
// whose address is a listener of the test's own. Afterwards the ring, every
// node's records and verify are exactly as before, and nothing ever
// connected or sent to the claimed address.
func TestOutsiderInjectsNothing(t *testing.T) {
	const k = 2 // of 4 nodes: each record is missing on two, where a handled replicate would add it
	first := startNode(t, filepath.Join(t.TempDir(), "n0"), "local", "--replicas", fmt.Sprint(k), "--rpc", "coap")
	nodes := []*nodeProc{first}
	var info ringInfo
	getJSON(t, first.URL+"/api/v1/node", &info)
	for i := 1; i < 4; i++ {
		nodes = append(nodes, startNode(t, filepath.Join(t.TempDir(), fmt.Sprint("n", i)), "local",
			"--replicas", fmt.Sprint(k), "--rpc", "coap", "--join", info.RPC))
	}
	dlWaitRing(t, nodes, 60*time.Second)
	var bodies []string
	for i := range 20 {
		b, _ := dlReading("outsider", 0, i)
		bodies = append(bodies, b)
	}
	rcs, code, msg := dlPut(nodes[1], bodies, true, true)
	if msg != "" {
		t.Fatalf("put: %d %s", code, msg)
	}
	dlWaitReplicated(t, nodes, 30*time.Second)
	raw := getRaw(t, first.URL+"/api/v1/records/"+rcs[0].TxID)

	// What the attacker points replies at: a TCP and a UDP listener that
	// count what reaches them.
	var reached atomic.Int64
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	go func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			reached.Add(1)
			c.Close()
		}
	}()
	ul, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := ul.ReadFromUDP(buf); err != nil {
				return
			}
			reached.Add(1)
		}
	}()

	before := map[string]uint64{}
	states := map[string]dlNodeState{}
	for _, p := range nodes {
		st, err := dlState(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		before[p.ID], states[p.ID] = st.Stats.Records, st
	}
	owner := rcs[0].Owner
	for _, p := range nodes {
		st := states[p.ID]
		to := fmt.Sprintf(`{"id":"%s","addr":"%s"}`, p.ID, st.rpc())
		madeUp := strings.Repeat("0", 39) + "1"
		frames := []string{
			fmt.Sprintf(`{"type":"MESSAGE","id":"7","from":{"id":"%s","addr":"%s"},"to":%s,"payload":{"data":{"op":"replicate","body":{"records":[%s]}}}}`,
				owner.ID, owner.Addr, to, raw),
			fmt.Sprintf(`{"type":"NOTIFY_SUCCESSOR","id":"8","from":{"id":"%s","addr":"ws://%s"},"to":%s}`, madeUp, tl.Addr(), to),
			fmt.Sprintf(`{"type":"FIND_SUCCESSOR","id":"9","from":{"id":"%s","addr":"coap://%s"},"to":%s,"key":"%s"}`, madeUp, ul.LocalAddr(), to, p.ID),
		}
		// WebSocket: the frames go out as text; the node answers none and
		// closes the connection at its TLS handshake.
		c, _, err := websocket.DefaultDialer.Dial("ws://"+p.Addr+"/node/"+p.ID+"/receive", nil)
		if err != nil {
			t.Fatalf("dial %s: %v", p.Addr, err)
		}
		for _, f := range frames {
			_ = c.WriteMessage(websocket.TextMessage, []byte(f))
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, m, err := c.ReadMessage(); err == nil {
			t.Errorf("node %s answered an unauthenticated client: %s", p.ID[:8], m)
		}
		c.Close()
		// CoAP: confirmable POSTs to /node/{id}/receive on the DTLS port.
		// Plain CoAP there is the devices' front, which has no such path:
		// the only answer allowed is 4.04 Not Found.
		_, hostport, _ := strings.Cut(st.rpc(), "://")
		uc, err := net.Dial("udp", hostport)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range frames {
			_, _ = uc.Write(coapPost(uint16(100+i), p.ID, []byte(f)))
		}
		_ = uc.SetReadDeadline(time.Now().Add(2 * time.Second))
		for buf := make([]byte, 2048); ; {
			n, err := uc.Read(buf)
			if err != nil {
				break
			}
			if n < 2 || buf[1] != 4<<5|4 { // code 4.04
				t.Errorf("node %s answered a plain CoAP POST to its RPC path with other than 4.04: % x", p.ID[:8], buf[:min(n, 16)])
			}
		}
		uc.Close()
	}
	// Nothing changes: give a handled message the time to show.
	time.Sleep(3 * time.Second)
	if why := dlRingErr(t, nodes); why != "" {
		t.Fatalf("the ring changed: %s", why)
	}
	for _, p := range nodes {
		st, err := dlState(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		if st.Stats.Records != before[p.ID] {
			t.Errorf("node %s holds %d records, was %d", p.ID[:8], st.Stats.Records, before[p.ID])
		}
		if st.Predecessor == nil || st.Predecessor.ID != states[p.ID].Predecessor.ID {
			t.Errorf("node %s's predecessor changed", p.ID[:8])
		}
		if rep := getVerify(t, p.URL); !rep.Valid {
			t.Errorf("verify on %s: %+v", p.ID[:8], rep)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("%d connections or datagrams reached the address an unauthenticated client claimed", n)
	}
}

// rpc is the node's advertised RPC address.
func (s dlNodeState) rpc() string { return s.RPC }

// coapPost is a confirmable CoAP POST /node/{id}/receive carrying body.
func coapPost(mid uint16, id string, body []byte) []byte {
	b := []byte{0x40, 0x02, byte(mid >> 8), byte(mid), 0xb4, 'n', 'o', 'd', 'e', 0x0d, byte(len(id) - 13)}
	b = append(b, id...)
	b = append(b, 0x07)
	b = append(b, "receive"...)
	b = append(b, 0xff)
	return append(b, body...)
}

// getRaw returns the body of a GET that must answer 200.
func getRaw(tb testing.TB, url string) json.RawMessage {
	tb.Helper()
	r, err := tryHTTP(httpClient, "GET", url, "", nil)
	if err != nil || r.Code != 200 {
		tb.Fatalf("GET %s: %v %d %s", url, err, r.Code, r.Body)
	}
	return r.Body
}
