package chordsim

import (
	"fmt"
	"slices"
	"strings"
)

// Scripts are in a tiny data-driven format, after etcd-io/raft's testdata:
//
//	# comments tell the story
//	command arg key=value
//	----
//	expected output
//	(a blank line ends the case)
//
// Every case has a "----" line; the expected output may be empty.

// Cmd is one command: a name, positional arguments and key=value arguments.
type Cmd struct {
	Name string
	Args []string
	KV   map[string]string
	keys []string // KV keys in the order written
}

// ParseCmd parses one command line.
func ParseCmd(line string) (Cmd, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return Cmd{}, fmt.Errorf("empty command")
	}
	c := Cmd{Name: f[0], KV: map[string]string{}}
	for _, a := range f[1:] {
		if k, v, ok := strings.Cut(a, "="); ok && k != "" {
			if _, dup := c.KV[k]; !dup {
				c.keys = append(c.keys, k)
			}
			c.KV[k] = v
			continue
		}
		c.Args = append(c.Args, a)
	}
	return c, nil
}

// String writes the command back as text.
func (c Cmd) String() string {
	parts := append([]string{c.Name}, c.Args...)
	keys := c.keys
	if len(keys) != len(c.KV) {
		keys = keys[:0:0]
		for k := range c.KV {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	for _, k := range keys {
		parts = append(parts, k+"="+c.KV[k])
	}
	return strings.Join(parts, " ")
}

// Case is one command of a script with the output it expects.
type Case struct {
	Comment  []string // comment lines before the command
	Cmd      Cmd
	Line     int
	Expected string
}

// ParseScript reads a script.
func ParseScript(text string) ([]Case, error) {
	lines := strings.Split(text, "\n")
	var cases []Case
	var comment []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t\r")
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "#"):
			comment = append(comment, l)
			continue
		}
		c, err := ParseCmd(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		cs := Case{Comment: comment, Cmd: c, Line: i + 1}
		comment = nil
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "----" {
			return nil, fmt.Errorf("line %d: %q must be followed by ----", i+1, l)
		}
		i += 2
		var out []string
		for ; i < len(lines) && strings.TrimRight(lines[i], " \t\r") != ""; i++ {
			out = append(out, strings.TrimRight(lines[i], " \t\r"))
		}
		cs.Expected = strings.Join(out, "\n")
		cases = append(cases, cs)
	}
	return cases, nil
}

// FormatScript writes cases back with the given outputs (for -rewrite).
func FormatScript(cases []Case, outputs []string) string {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range c.Comment {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.Cmd.String() + "\n----\n")
		if outputs[i] != "" {
			b.WriteString(strings.TrimRight(outputs[i], "\n") + "\n")
		}
	}
	return b.String()
}

// Script is a list of commands: a scenario, or the shrunk trace of one.
type Script []Cmd

func (sc Script) String() string {
	var b strings.Builder
	for _, c := range sc {
		b.WriteString(c.String() + "\n----\n\n")
	}
	return b.String()
}

// Run executes a script on a fresh simulation and returns it with the
// outputs. It stops at the first violation.
func (sc Script) Run(opt Options) (*Sim, []string) {
	s := New(opt)
	var outs []string
	for _, c := range sc {
		out, _ := s.Exec(c)
		outs = append(outs, out)
		if s.violation != nil {
			break
		}
	}
	return s, outs
}
