package coap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tests with libcoap's real client (coap-client-notls, Debian libcoap3-bin):
// the client the issue names, which sends each Block1 block with a new token.

// TestLibcoapPostBlockwise posts a 2,000-byte reading in 64-byte blocks, CON
// and NON, and checks that the Thing got exactly those bytes, once.
func TestLibcoapPostBlockwise(t *testing.T) {
	clientPath(t)
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	for _, mode := range []struct {
		name  string
		flags []string
	}{{"con", nil}, {"non", []string{"-N"}}} {
		t.Run(mode.name, func(t *testing.T) {
			thing := "sensor-" + mode.name
			reading := fmt.Sprintf(`{"temperature":21.5,"pad":"%s"}`, strings.Repeat("x", 2000-29))
			if len(reading) != 2000 {
				t.Fatalf("reading of %d bytes", len(reading))
			}
			args := append([]string{"-m", "post", "-t", "50", "-b", "64", "-e", reading}, mode.flags...)
			out, errs := coapClient(t, append(args, "coap://"+addr+"/object/"+thing+"/send")...)
			var receipt struct {
				TxID string `json:"txID"`
			}
			if err := json.Unmarshal([]byte(out), &receipt); err != nil || len(receipt.TxID) != 64 {
				t.Fatalf("response %q (stderr %q): not a receipt", out, errs)
			}
			got := dev.readings(thing)
			if len(got) != 1 || string(got[0]) != reading {
				t.Fatalf("stored %d readings; first %d bytes, want the 2000 posted", len(got), len(first(got)))
			}
		})
	}
}

func first(rs []json.RawMessage) []byte {
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

// TestLibcoapObserveViewer observes a viewer with libcoap (also block-wise,
// with notifications larger than its 64-byte blocks) and checks that every
// reading written meanwhile arrives, in order.
func TestLibcoapObserveViewer(t *testing.T) {
	path := clientPath(t)
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	for _, mode := range []struct {
		name  string
		flags []string
		pad   int
	}{{"small", nil, 0}, {"blockwise", []string{"-b", "64"}, 200}} {
		t.Run(mode.name, func(t *testing.T) {
			thing := "viewed-" + mode.name
			args := append([]string{"-m", "get", "-s", "6", "-w"}, mode.flags...)
			cmd := exec.Command(path, append(args, "coap://"+addr+"/object/"+thing+"/viewer")...)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			eventually(t, "libcoap's registration", func() bool { return dev.subscribers(thing) == 1 })
			const n = 5
			for i := 1; i <= n; i++ {
				v := fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, strings.Repeat("p", mode.pad))
				if _, err := dev.Send(t.Context(), thing, []json.RawMessage{json.RawMessage(v)}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // readings apart, as a device sends them
			}
			select {
			case <-done: // -s 6: libcoap stops observing and exits
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("coap-client did not end")
			}
			var seqs []int
			for _, line := range strings.Split(out.String(), "\n") {
				var rec struct {
					Data struct{ Seq int } `json:"data"`
				}
				if line != "" && json.Unmarshal([]byte(line), &rec) == nil {
					seqs = append(seqs, rec.Data.Seq)
				}
			}
			want := []int{1, 2, 3, 4, 5}
			if fmt.Sprint(seqs) != fmt.Sprint(want) {
				t.Fatalf("libcoap printed the readings %v, want %v\nstdout %q\nstderr %q", seqs, want, out.String(), errb.String())
			}
		})
	}
}

// TestLibcoapDiscovery reads /.well-known/core and /.well-known/wot (with
// its Content-Format), and a large TD in 64-byte blocks.
func TestLibcoapDiscovery(t *testing.T) {
	clientPath(t)
	dev := newFakeDevices()
	dev.dir = []byte(`{"title":"directory","@type":"ThingDirectory"}`)
	bigTD := fmt.Sprintf(`{"id":"urn:big","title":"big","description":"%s"}`, strings.Repeat("d", 5000))
	dev.tds["big"] = []byte(bigTD)
	_, addr := startFront(t, dev)
	u := "coap://" + addr

	if _, err := dev.Send(t.Context(), "lamp", []json.RawMessage{json.RawMessage(`{"on":true}`)}); err != nil {
		t.Fatal(err)
	}
	out, _ := coapClient(t, "-m", "get", u+"/.well-known/core")
	for _, want := range []string{`</.well-known/wot>;rt="wot.directory";ct=432`, `</.well-known/core>;ct=40`} {
		if !strings.Contains(out, want) {
			t.Errorf("/.well-known/core %q lacks %s", out, want)
		}
	}

	out, _ = coapClient(t, "-v", "7", "-m", "get", u+"/.well-known/wot")
	if !strings.Contains(out, "Content-Format:432") || !strings.Contains(out, string(dev.dir)) {
		t.Errorf("/.well-known/wot: want the directory TD with Content-Format 432; got\n%s", out)
	}

	// libcoap ends what it prints with a newline when the payload has none.
	out, _ = coapClient(t, "-m", "get", "-b", "64", u+"/things/big")
	if out = strings.TrimSuffix(out, "\n"); out != bigTD {
		t.Errorf("the %d-byte TD in 64-byte blocks came as %d bytes", len(bigTD), len(out))
	}
	out, _ = coapClient(t, "-m", "get", u+"/things/big") // the server's block size
	if out = strings.TrimSuffix(out, "\n"); out != bigTD {
		t.Errorf("the %d-byte TD in the server's blocks came as %d bytes", len(bigTD), len(out))
	}
}

// TestLibcoapErrors: 4.13 with Size1 for an oversize body, 4.02 for an
// unknown critical option, 4.15 for a body that is not JSON's
// Content-Format, 4.00 for malformed JSON; none stores anything.
func TestLibcoapErrors(t *testing.T) {
	clientPath(t)
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) { c.MaxBody = 4096 })
	send := "coap://" + addr + "/object/t/send"
	size1 := regexp.MustCompile(`c:4\.13 .*Size1:4096`)
	cases := []struct {
		name string
		args []string
		want string // in stderr
		out  *regexp.Regexp
	}{
		{"oversize announced", []string{"-v", "7", "-b", "64", "-t", "50", "-e", strings.Repeat("y", 5000)}, "4.13", size1},
		{"oversize one datagram", []string{"-v", "7", "-t", "50", "-e", `"` + strings.Repeat("y", 4100) + `"`}, "4.13", size1},
		{"unknown critical option", []string{"-t", "50", "-O", "65001,x", "-e", "{}"}, "4.02", nil},
		{"text/plain", []string{"-t", "0", "-e", "{}"}, "4.15", nil},
		{"no content format", []string{"-e", "{}"}, "4.15", nil},
		{"malformed JSON", []string{"-t", "50", "-e", `{"a":`}, "4.00 the body is not JSON", nil},
		{"GET", []string{"-m", "get"}, "4.05", nil},
	}
	for _, c := range cases {
		args := append([]string{"-m", "post"}, c.args...)
		out, errs := coapClient(t, append(args, send)...)
		if !strings.HasPrefix(errs, c.want) {
			t.Errorf("%s: stderr %q, want %s", c.name, errs, c.want)
		}
		if c.out != nil && !c.out.MatchString(out) {
			t.Errorf("%s: the response lacks Size1:4096", c.name)
		}
	}
	if out, errs := coapClient(t, "-m", "get", "coap://"+addr+"/nowhere"); !strings.HasPrefix(errs, "4.04") {
		t.Errorf("unknown path: %q %q", out, errs)
	}
	if got := dev.readings("t"); len(got) != 0 {
		t.Fatalf("bad requests stored %d readings", len(got))
	}
}
