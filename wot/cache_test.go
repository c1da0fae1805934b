package wot

import (
	"fmt"
	"testing"
	"time"
)

// TestTDCache: entries serve readers that accept their age, the least
// recently used goes first when full, an older version never replaces a
// newer one, and nothing outlives the cache's lifetime.
func TestTDCache(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTDCache(3, time.Minute, func() time.Time { return now })
	v := func(at int64) tdVersion { return tdVersion{found: true, time: at, td: []byte(fmt.Sprint(at))} }
	c.put("a", v(10))
	c.put("b", v(10))
	c.put("c", v(10))
	if got, ok := c.get("a", time.Second); !ok || got.time != 10 {
		t.Fatalf("a: %v %v", got, ok)
	}
	c.put("d", v(10)) // b is the least recently used
	if _, ok := c.get("b", time.Second); ok {
		t.Error("b outlived a full cache")
	}
	c.put("a", v(5)) // older: ignored
	if got, _ := c.get("a", time.Second); got.time != 10 {
		t.Errorf("an older version replaced a newer one: %d", got.time)
	}
	now = now.Add(3 * time.Second)
	if _, ok := c.get("a", 2*time.Second); ok {
		t.Error("a 3 s old entry served a reader taking 2 s")
	}
	if _, ok := c.get("a", time.Minute); !ok {
		t.Error("a 3 s old entry refused to a reader taking a minute")
	}
	c.put("a", v(20))
	if got, ok := c.get("a", time.Second); !ok || got.time != 20 {
		t.Errorf("a newer version was not taken: %v %v", got, ok)
	}
	now = now.Add(time.Minute)
	for _, id := range []string{"a", "c", "d"} {
		if _, ok := c.get(id, time.Hour); ok {
			t.Errorf("%s outlived the cache's lifetime", id)
		}
	}
	if len(c.byID) != 0 || c.order.Len() != 0 {
		t.Errorf("expired entries kept: %d %d", len(c.byID), c.order.Len())
	}
}
