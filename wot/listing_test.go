package wot

import (
	"context"
	"fmt"
	"testing"
)

// TestListMerge: the merge of the nodes' parts is in id order, one entry per
// id, the newest of those given, deleted ones included (list drops them).
func TestListMerge(t *testing.T) {
	e := func(id string, at int64, deleted bool) listEntry {
		return listEntry{ID: id, Time: at, Deleted: deleted, TD: []byte(`{}`)}
	}
	m := &listMerger{srcs: []*listSource{
		{done: true, buf: []listEntry{e("a", 1, false), e("c", 5, false), e("d", 1, false)}},
		{done: true, buf: []listEntry{e("b", 1, false), e("c", 7, true)}},
		{done: true, buf: []listEntry{e("c", 6, false), e("e", 1, false)}},
		{done: true},
	}}
	var got []string
	for {
		x, ok, err := m.next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s@%d/%v", x.ID, x.Time, x.Deleted))
	}
	want := "[a@1/false b@1/false c@7/true d@1/false e@1/false]"
	if fmt.Sprint(got) != want {
		t.Errorf("merged %v, want %s", got, want)
	}
	if m.pending() {
		t.Error("pending after the end")
	}
}

// TestValidEntries: a node's answer is taken only as far as it is in order
// and well formed.
func TestValidEntries(t *testing.T) {
	es := []listEntry{
		{ID: "a", TD: []byte(`{}`)}, {ID: "a", TD: []byte(`{}`)}, {ID: "0"}, {ID: "b"},
		{ID: "c", Deleted: true}, {ID: "urn:flownode:things", TD: []byte(`{}`)}, {ID: "d", TD: []byte(`[1]`)}, {ID: "e", TD: []byte(`{}`)},
	}
	got := validEntries(append([]listEntry(nil), es...), "", false)
	var ids []string
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[a c e]" {
		t.Errorf("kept %v", ids)
	}
	got = validEntries(append([]listEntry(nil), es...), "a", true)
	ids = nil
	for _, e := range got {
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[b c d e]" {
		t.Errorf("ids only, after a: kept %v", ids)
	}
}
