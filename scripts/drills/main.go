// Command drills runs the fault drills of `make ring-test` against the compose
// ring (compose.yaml) on this Docker host. While writers put readings
// continuously (each acknowledged only once every replica holds it), it kills
// one node, kills two adjacent nodes, cuts one node off its network and heals
// it, pauses one, and restarts every node in turn. After each drill it checks
// that the ring is Ideal again as every node reports it, that every
// acknowledged reading reads back intact through the live nodes, and that
// verify is valid on every node. It prints what it did and the figures, and
// exits 1 on any loss, corruption, invalid ledger or ring that does not heal.
//
// It talks only to the ring's published loopback ports and to the docker CLI.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// node is one container of the ring as the drills see it.
type node struct {
	name      string // compose service, also its host name on the ring network
	container string
	url       string // its API, published on loopback
	id        string // its Chord ID, read at start; it lives in the volume
	down      bool   // killed, paused or cut off: not reachable from here
}

type drills struct {
	nodes        []*node
	c            *http.Client
	slow         *http.Client // for verify, which reads the whole store
	idealTimeout time.Duration
	rng          *rand.Rand

	mu sync.Mutex // guards node.down

	load     *load
	baseAcks []*acked // acknowledged in the baseline runs
	results  []result
	failed   bool
}

// result is one drill's line in the report.
type result struct {
	name          string
	idealFault    time.Duration // from the fault until the rest were Ideal; 0: not measured
	idealHeal     []time.Duration
	acked, failed int64
	checked       int
	problems      []string
}

func main() {
	n := flag.Int("nodes", 5, "nodes in the ring: node1..nodeN, container flownode-nodeN, API on 127.0.0.1:800N")
	writers := flag.Int("writers", 4, "concurrent writers")
	batch := flag.Int("batch", 20, "readings per put")
	rate := flag.Float64("rate", 60, "readings per second put during the drills (the baseline runs unthrottled)")
	baseline := flag.Duration("baseline", 8*time.Second, "length of each unthrottled baseline ingest run")
	idealTimeout := flag.Duration("ideal-timeout", 3*time.Minute, "how long a ring may take to be Ideal again")
	maxReadings := flag.Int64("max-readings", 300000, "stop putting after this many readings (bounds the run)")
	only := flag.String("only", "", "comma-separated drills to run (kill,kill2,cut,pause,restart); all when empty")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed for the choice of victims")
	flag.Parse()

	// The ring asks clients that are not on a node's own machine for a
	// credential: scripts/ring/provision.sh writes the operator's admin
	// token, scripts/ring/test.sh passes it in FLOWNODE_TOKEN.
	token := os.Getenv("FLOWNODE_TOKEN")
	if token == "" {
		fmt.Fprintln(os.Stderr, "drills: FLOWNODE_TOKEN is empty; the ring refuses writes and verify without a token (export FLOWNODE_TOKEN=$(cat .ring/token))")
	}
	d := &drills{
		c:            &http.Client{Timeout: 20 * time.Second, Transport: bearer{token, &http.Transport{MaxIdleConnsPerHost: 32}}},
		slow:         &http.Client{Timeout: 10 * time.Minute, Transport: bearer{token, http.DefaultTransport}},
		idealTimeout: *idealTimeout,
		rng:          rand.New(rand.NewPCG(*seed, 0)),
	}
	for i := 1; i <= *n; i++ {
		d.nodes = append(d.nodes, &node{name: fmt.Sprint("node", i), container: fmt.Sprint("flownode-node", i),
			url: fmt.Sprintf("http://127.0.0.1:%d", 8000+i)})
	}
	fmt.Printf("drills: %d nodes, seed %d\n", *n, *seed)
	if err := d.start(); err != nil {
		fatal(err)
	}

	// Ingest figures first, on the healthy ring, as fast as acknowledged.
	for _, wait := range []string{"replicas", "owner"} {
		l := &load{client: d.c, tag: "baseline-" + wait, batch: 100, wait: wait, maxReadings: *maxReadings, reachable: d.reachable}
		start := time.Now()
		stop := l.run(16)
		time.Sleep(*baseline)
		stop()
		secs := time.Since(start).Seconds()
		acks := l.acked()
		fmt.Printf("baseline: 16 clients, batches of 100, wait=%s: %d readings acknowledged in %.1f s = %.0f readings/s (%d batches failed)\n",
			wait, len(acks), secs, float64(len(acks))/secs, l.failedBatches.Load())
		d.baseAcks = append(d.baseAcks, acks...)
		d.results = append(d.results, d.check(result{name: "baseline wait=" + wait, acked: int64(len(acks)), failed: l.failedBatches.Load()}, true))
	}

	d.load = &load{client: d.c, tag: "drill", batch: *batch, wait: "replicas", rate: *rate, maxReadings: *maxReadings, reachable: d.reachable}
	stop := d.load.run(*writers)
	all := map[string]func() result{
		"kill": d.killOne, "kill2": d.killTwoAdjacent, "cut": d.cutOff, "pause": d.pauseOne, "restart": d.restartAll,
	}
	for _, name := range []string{"kill", "kill2", "cut", "pause", "restart"} {
		if *only != "" && !slices.Contains(strings.Split(*only, ","), name) {
			continue
		}
		before, failedBefore := len(d.load.acked()), d.load.failedBatches.Load()
		r := all[name]()
		r.acked = int64(len(d.load.acked()) - before)
		r.failed = d.load.failedBatches.Load() - failedBefore
		for why, count := range d.load.takeErrors() {
			fmt.Printf("  put failures during %s: %d× %s\n", r.name, count, why)
		}
		d.results = append(d.results, r)
		if len(r.problems) > 0 {
			break // the ring is not in a state the next drill can start from
		}
	}
	stop()
	fmt.Printf("load: %d readings acknowledged during the drills, %d batches refused or failed (not acknowledged, so not owed)\n",
		len(d.load.acked()), d.load.failedBatches.Load())
	if !d.failed {
		d.results = append(d.results, d.check(result{name: "final"}, true))
	}
	d.report()
	if d.failed {
		fmt.Println("ring-test: FAILED")
		os.Exit(1)
	}
	fmt.Println("ring-test: passed, nothing lost")
}

// start waits for every node to serve, learns its ID, and waits for the
// Ideal ring.
func (d *drills) start() error {
	t0 := time.Now()
	for _, n := range d.nodes {
		if err := d.waitServing(n, 2*time.Minute); err != nil {
			return err
		}
		in, err := info(d.c, n)
		if err != nil {
			return err
		}
		n.id = in.ID.String()
		fmt.Printf("  %s %s id %.8s\n", n.name, n.url, n.id)
	}
	took, err := waitIdeal(d.c, d.nodes, t0, d.idealTimeout)
	if err != nil {
		return err
	}
	fmt.Printf("ring of %d Ideal %.1f s after the drills started\n", len(d.nodes), took.Seconds())
	return nil
}

// waitServing waits until the node's /healthz answers 200.
func (d *drills) waitServing(n *node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		code, _, err := get(d.c, n.url+"/healthz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not serve %s/healthz after %v (%d, %v)", n.name, n.url, timeout, code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *drills) setDown(down bool, ns ...*node) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range ns {
		n.down = down
	}
}

// reachable lists the nodes not taken down by a drill.
func (d *drills) reachable() []*node {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*node
	for _, n := range d.nodes {
		if !n.down {
			out = append(out, n)
		}
	}
	return out
}

// inRingOrder returns the nodes sorted by ID: each one's successor follows it.
func (d *drills) inRingOrder() []*node {
	s := slices.Clone(d.nodes)
	slices.SortFunc(s, func(a, b *node) int { return strings.Compare(a.id, b.id) })
	return s
}

func (d *drills) pick() *node { return d.nodes[d.rng.IntN(len(d.nodes))] }

// act runs one docker command of a drill and logs it.
func (d *drills) act(r *result, args ...string) bool {
	fmt.Printf("  %s: docker %s\n", r.name, strings.Join(args, " "))
	if _, err := docker(args...); err != nil {
		r.problems = append(r.problems, err.Error())
		return false
	}
	return true
}

// faulted waits for the nodes still up to form the Ideal ring without the
// victims, then checks every acknowledged reading through them.
func (d *drills) faulted(r *result, t0 time.Time) bool {
	took, err := waitIdeal(d.c, d.reachable(), t0, d.idealTimeout)
	if err != nil {
		r.problems = append(r.problems, err.Error())
		return false
	}
	r.idealFault = took
	fmt.Printf("  %s: the %d others are Ideal after %.1f s\n", r.name, len(d.reachable()), took.Seconds())
	*r = d.check(*r, false)
	return len(r.problems) == 0
}

// healed waits for the whole ring to be Ideal again after the victims came
// back at t0, then checks every acknowledged reading.
func (d *drills) healed(r *result, t0 time.Time, victims ...*node) bool {
	for _, v := range victims {
		if err := d.waitServing(v, 2*time.Minute); err != nil {
			r.problems = append(r.problems, err.Error())
			return false
		}
	}
	d.setDown(false, victims...)
	took, err := waitIdeal(d.c, d.nodes, t0, d.idealTimeout)
	if err != nil {
		r.problems = append(r.problems, err.Error())
		return false
	}
	r.idealHeal = append(r.idealHeal, took)
	fmt.Printf("  %s: all %d Ideal %.1f s after %s came back\n", r.name, len(d.nodes), took.Seconds(), names(victims))
	return true
}

func (d *drills) killOne() result {
	r := result{name: "kill one"}
	v := d.pick()
	return d.killAndRestart(r, v)
}

func (d *drills) killTwoAdjacent() result {
	r := result{name: "kill two adjacent"}
	order := d.inRingOrder()
	i := d.rng.IntN(len(order))
	return d.killAndRestart(r, order[i], order[(i+1)%len(order)])
}

// killAndRestart SIGKILLs the victims at once (docker kill), checks the rest,
// then starts them again with their volumes and checks the whole ring.
func (d *drills) killAndRestart(r result, victims ...*node) result {
	cs := containers(victims)
	return d.faultAndHeal(r, victims,
		func(r *result) bool { return d.act(r, append([]string{"kill"}, cs...)...) },
		func(r *result) bool { return d.act(r, append([]string{"start"}, cs...)...) })
}

// cutOff disconnects a node from the ring's network, waits for the rest to
// close the ring without it, and connects it again with its aliases.
func (d *drills) cutOff() result {
	v := d.pick()
	var eps []endpoint
	return d.faultAndHeal(result{name: "cut off and heal"}, []*node{v},
		func(r *result) bool {
			fmt.Printf("  %s: docker network disconnect (every network of %s)\n", r.name, v.container)
			var err error
			if eps, err = disconnect(v.container); err != nil {
				r.problems = append(r.problems, err.Error())
				return false
			}
			return true
		},
		func(r *result) bool {
			fmt.Printf("  %s: docker network connect %s (aliases as before)\n", r.name, v.container)
			if err := reconnect(v.container, eps); err != nil {
				r.problems = append(r.problems, err.Error())
				return false
			}
			return true
		})
}

// pauseOne freezes a node (docker pause: SIGSTOP for its cgroup), waits for
// the rest to close the ring without it, then lets it run on.
func (d *drills) pauseOne() result {
	v := d.pick()
	return d.faultAndHeal(result{name: "pause and unpause"}, []*node{v},
		func(r *result) bool { return d.act(r, "pause", v.container) },
		func(r *result) bool { return d.act(r, "unpause", v.container) })
}

// faultAndHeal runs one drill: fault takes the victims down; the others must
// form the Ideal ring and serve every acknowledged reading. Then heal brings
// the victims back (also after a failed check, so that the ring is left
// whole), and all nodes must be Ideal and serve every reading again.
func (d *drills) faultAndHeal(r result, victims []*node, fault, heal func(r *result) bool) result {
	d.setDown(true, victims...)
	t0 := time.Now()
	ok := fault(&r) && d.faulted(&r, t0)
	t1 := time.Now()
	if !heal(&r) || !ok || !d.healed(&r, t1, victims...) {
		return d.finish(r)
	}
	return d.finish(d.check(r, true))
}

// restartAll restarts every node in turn (SIGTERM: a graceful leave, then a
// start with its volume), each once the ring is Ideal again.
func (d *drills) restartAll() result {
	r := result{name: "restart all in turn"}
	for _, v := range d.nodes {
		d.setDown(true, v)
		t0 := time.Now()
		if !d.act(&r, "restart", "-t", "20", v.container) || !d.healed(&r, t0, v) {
			return d.finish(r)
		}
	}
	return d.finish(d.check(r, true))
}

// allAcked is every reading acknowledged so far.
func (d *drills) allAcked() []*acked {
	acks := slices.Clone(d.baseAcks)
	if d.load != nil {
		acks = append(acks, d.load.acked()...)
	}
	return acks
}

// check reads every reading acknowledged so far back through the reachable
// nodes and, with verify, verifies every reachable node's ledger (it reads
// the whole store, so the drills do it once the ring is whole again).
func (d *drills) check(r result, verify bool) result {
	live := d.reachable()
	acks := d.allAcked()
	t0 := time.Now()
	lost, corrupt := readAll(d.c, acks, live)
	readTime := time.Since(t0)
	r.checked = len(acks)
	if !verify {
		// While nodes are down only wait=replicas acknowledgements promise
		// that the reading can be read: a wait=owner one promises the owner's
		// disk, and its copies may still be on their way (README). Those must
		// be back once the ring has healed, when verify runs.
		lost = d.ownerOnly(r.name, lost)
	}
	for i, why := range lost {
		if i < 10 {
			r.problems = append(r.problems, "lost: "+why)
		}
	}
	for i, why := range corrupt {
		if i < 10 {
			r.problems = append(r.problems, "corrupt: "+why)
		}
	}
	if len(lost)+len(corrupt) > 0 {
		r.problems = append(r.problems, fmt.Sprintf("%d of %d acknowledged readings lost, %d corrupt", len(lost), len(acks), len(corrupt)))
	}
	t1 := time.Now()
	if verify {
		if err := verifyAll(d.slow, live); err != nil {
			r.problems = append(r.problems, err.Error())
		}
	}
	verifyTime := time.Since(t1)
	status := "ok"
	if len(r.problems) > 0 {
		status = "FAILED"
		d.failed = true
	}
	verified := "not verified until healed"
	if verify {
		verified = fmt.Sprintf("verify on each in %.1f s", verifyTime.Seconds())
	}
	fmt.Printf("  %s: read back all %d acknowledged readings through %s in %.1f s (%.0f/s), %s: %s\n",
		r.name, len(acks), names(live), readTime.Seconds(), float64(len(acks))/readTime.Seconds(), verified, status)
	return r
}

// ownerOnly drops from lost the readings acknowledged with wait=owner and
// says how many there were.
func (d *drills) ownerOnly(drill string, lost []string) []string {
	var keep []string
	owner := 0
	for _, why := range lost {
		if strings.HasPrefix(why, "[owner] ") {
			owner++
			continue
		}
		keep = append(keep, why)
	}
	if owner > 0 {
		fmt.Printf("  %s: %d readings acknowledged with wait=owner not readable while their owner is down (owed again after the heal)\n", drill, owner)
	}
	return keep
}

// finish marks a drill that stopped on a problem as failed and prints why.
func (d *drills) finish(r result) result {
	if len(r.problems) > 0 {
		d.failed = true
		for _, p := range r.problems {
			fmt.Printf("  %s: PROBLEM: %s\n", r.name, p)
		}
	}
	for _, n := range d.nodes {
		if oom, _ := docker("inspect", "--format", "{{.State.OOMKilled}}", n.container); oom == "true" {
			d.failed = true
			fmt.Printf("  %s: PROBLEM: %s was killed for lack of memory\n", r.name, n.container)
		}
	}
	return r
}

func (d *drills) report() {
	fmt.Println()
	fmt.Printf("%-22s %10s %16s %8s %8s %9s  %s\n", "drill", "acked", "Ideal after", "Ideal", "failed", "checked", "result")
	fmt.Printf("%-22s %10s %16s %8s %8s %9s\n", "", "readings", "fault (others)", "healed", "batches", "readings")
	for _, r := range d.results {
		fault, heal := "-", "-"
		if r.idealFault > 0 {
			fault = fmt.Sprintf("%.1f s", r.idealFault.Seconds())
		}
		if len(r.idealHeal) > 0 {
			hs := make([]string, len(r.idealHeal))
			for i, h := range r.idealHeal {
				hs[i] = fmt.Sprintf("%.1f", h.Seconds())
			}
			heal = strings.Join(hs, "/") + " s"
		}
		status := "ok"
		if len(r.problems) > 0 {
			status = "FAILED"
		}
		fmt.Printf("%-22s %10d %16s %8s %8d %9d  %s\n", r.name, r.acked, fault, heal, r.failed, r.checked, status)
	}
	fmt.Println()
	if out, err := docker(append([]string{"stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}"}, containers(d.nodes)...)...); err == nil {
		fmt.Println("memory now (gateway-profile nodes have mem_limit 128m):")
		fmt.Println(out)
	}
}

func containers(ns []*node) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.container
	}
	return out
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "drills:", err)
	os.Exit(1)
}

// bearer sends the operator's token with every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.next.RoundTrip(r)
}
