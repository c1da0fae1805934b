package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

type statusError struct{ code int }

func (e statusError) Error() string   { return "send a token with the admin scope" }
func (e statusError) HTTPStatus() int { return e.code }

// TestVerifyOneAtATimeBehindAdmin: GET /api/v1/verify asks the Admin hook
// first (its error's status, else 403), and runs one at a time: a call while
// another runs gets 429 with Retry-After.
func TestVerifyOneAtATimeBehindAdmin(t *testing.T) {
	n, err := node.Open(node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s := NewServer(n, nil)
	srv := httptest.NewServer(s)
	defer srv.Close()
	get := func() (int, http.Header, string) {
		resp, err := http.Get(srv.URL + "/api/v1/verify")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, _, body := get()
	var rep ledger.Report
	if code != 200 || json.Unmarshal([]byte(body), &rep) != nil || !rep.Valid {
		t.Fatalf("verify without a hook: %d %s", code, body)
	}

	// Another verify runs (it holds the token): this one is refused at once.
	s.verifying <- struct{}{}
	code, head, body := get()
	var e ErrorBody
	if code != http.StatusTooManyRequests || head.Get("Retry-After") == "" || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "already running") {
		t.Errorf("verify while one runs: %d %v %s, want 429 with Retry-After", code, head, body)
	}
	<-s.verifying
	if code, _, body := get(); code != 200 {
		t.Errorf("verify once the other ended: %d %s", code, body)
	}

	for _, c := range []struct {
		err  error
		code int
	}{
		{statusError{http.StatusUnauthorized}, 401},
		{errors.New("this credential may not run verify"), 403},
		{nil, 200},
	} {
		s.Admin = func(*http.Request) error { return c.err }
		code, _, body := get()
		if code != c.code {
			t.Errorf("Admin returning %v: %d %s, want %d", c.err, code, body, c.code)
		}
		if c.err != nil && (json.Unmarshal([]byte(body), &e) != nil || e.Error != c.err.Error()) {
			t.Errorf("Admin returning %v: body %s, want its sentence", c.err, body)
		}
	}
}
