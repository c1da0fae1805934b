package witness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Flowchain's NOTIFY_EDGE hands a node's virtual blocks to an edge node outside the
// ring. Here the node POSTs to each --edge URL, whenever its branch's checkpoint
// changes, the checkpoint (with the cosignatures it has) and the blocks since the
// last notification that URL took, oldest first. The receiver needs nothing of the
// ring to check them: the blocks chain from the last one it holds (or from genesis)
// to the checkpoint's head, and the checkpoint opens with the owner's key.

// EdgeNotification is the body of a NOTIFY_EDGE POST.
type EdgeNotification struct {
	Type       string            `json:"type"` // "NOTIFY_EDGE"
	Branch     string            `json:"branch"`
	Checkpoint string            `json:"checkpoint"`
	From       uint64            `json:"from"`   // the number of Blocks[0]
	Blocks     []json.RawMessage `json:"blocks"` // as stored, oldest first
}

// maxEdgeBlocks bounds one notification; a receiver that fell behind catches up
// over several.
const maxEdgeBlocks = 256

// ParseEdges checks --edge URLs: http or https, with a host.
func ParseEdges(urls []string) error {
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--edge %q: want an http:// or https:// URL", s)
		}
	}
	return nil
}

// edge is one receiver and what it has taken.
type edge struct {
	url    string
	sent   uint64 // blocks it has taken
	sentCP string // the checkpoint note it has taken last
	client *http.Client
}

func (s *Service) edgeLoop(ctx context.Context, urls []string) {
	edges := make([]*edge, len(urls))
	for i, u := range urls {
		edges[i] = &edge{url: u, client: &http.Client{Timeout: 10 * time.Second}}
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		own, err := s.current() // a ring of one publishes to no witness: sign here
		if err != nil || own == nil {
			continue
		}
		for _, e := range edges {
			if e.sentCP == string(own.Note) {
				continue
			}
			if err := s.notifyEdge(ctx, e); err != nil && ctx.Err() == nil {
				s.log.Warn("NOTIFY_EDGE failed; it is sent again at the next change", zap.String("edge", e.url), zap.Error(err))
			}
		}
	}
}

func (s *Service) notifyEdge(ctx context.Context, e *edge) error {
	own := s.Own()
	n := EdgeNotification{Type: "NOTIFY_EDGE", Branch: s.n.ID().String(), Checkpoint: string(own.Note), From: e.sent + 1, Blocks: []json.RawMessage{}}
	last := min(own.Size, e.sent+maxEdgeBlocks)
	if e.sent < last {
		raws, err := s.l.Store().Blocks(s.n.ID(), e.sent+1, int(last-e.sent))
		if err != nil {
			return err
		}
		for _, r := range raws {
			n.Blocks = append(n.Blocks, r)
		}
	}
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the edge answered %s", resp.Status)
	}
	e.sent += uint64(len(n.Blocks))
	if e.sent == own.Size {
		e.sentCP = string(own.Note)
	}
	return nil
}
