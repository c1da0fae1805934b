package coap

import (
	"net/url"
	"slices"
	"strings"
)

// maxLinkedThings bounds the Things /.well-known/core lists.
const maxLinkedThings = 64

// link is one entry of a link-format document (RFC 6690).
type link struct {
	href  string
	attrs [][2]string // name, value ("" for a flag such as obs)
}

func (l link) String() string {
	var b strings.Builder
	b.WriteString("<" + l.href + ">")
	for _, a := range l.attrs {
		b.WriteString(";" + a[0])
		if a[1] != "" {
			b.WriteString("=" + a[1])
		}
	}
	return b.String()
}

// matches applies a query filter of RFC 6690 §4.1: name=value, the value
// ending in * for a prefix.
func (l link) matches(name, value string) bool {
	match := func(v string) bool {
		v = strings.Trim(v, `"`)
		if p, ok := strings.CutSuffix(value, "*"); ok {
			return strings.HasPrefix(v, p)
		}
		if name == "rt" || name == "if" { // space-separated lists
			return slices.Contains(strings.Fields(v), value)
		}
		return v == value
	}
	if name == "href" {
		return match(l.href)
	}
	for _, a := range l.attrs {
		if a[0] == name && match(a[1]) {
			return true
		}
	}
	return false
}

// linkFormat is /.well-known/core: the resources this front serves, with
// the Things whose devices post or are observed here, filtered by the
// request's query.
func (s *Server) linkFormat(r *request) []byte {
	links := []link{
		{href: "/.well-known/core", attrs: [][2]string{{"ct", "40"}}},
		{href: "/.well-known/wot", attrs: [][2]string{{"rt", `"wot.directory"`}, {"ct", "432"}}},
	}
	for _, id := range s.knownThings() {
		e := "/" + url.PathEscape(id)
		links = append(links,
			link{href: "/things" + e, attrs: [][2]string{{"rt", `"wot.thing"`}, {"ct", "432"}}},
			link{href: "/object" + e + "/send", attrs: [][2]string{{"rt", `"flowchain.send"`}, {"ct", "50"}}},
			link{href: "/object" + e + "/viewer", attrs: [][2]string{{"rt", `"flowchain.viewer"`}, {"if", `"core.s"`}, {"ct", "50"}, {"obs", ""}}},
		)
	}
	queries, _ := r.m.Options.Queries()
	var out []string
	for _, l := range links {
		keep := true
		for _, q := range queries {
			name, value, _ := strings.Cut(q, "=")
			keep = keep && l.matches(name, value)
		}
		if keep {
			out = append(out, l.String())
		}
	}
	return []byte(strings.Join(out, ","))
}

// knownThings returns the Things with a device present or an observer on
// this front, sorted, at most maxLinkedThings.
func (s *Server) knownThings() []string {
	set := map[string]bool{}
	s.mu.Lock()
	for _, src := range s.sources {
		for thing := range src.present {
			set[thing] = true
		}
		for _, o := range src.observers {
			set[o.thing] = true
		}
	}
	s.mu.Unlock()
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids[:min(len(ids), maxLinkedThings)]
}
