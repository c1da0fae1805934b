package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// adminStub refuses as the access package's guard does, with err.
type adminStub struct {
	err   error
	asked *access.Scope
}

func (a adminStub) Authorize(_ *http.Request, thing string, need access.Scope) error {
	*a.asked = need
	if thing != "" {
		return errors.New("verify asked about one Thing, not every Thing")
	}
	return a.err
}

// TestVerifyOneAtATimeBehindAdmin: GET /api/v1/verify asks the Authorizer for
// the admin scope on every Thing first (401 for no credential, 403 for one
// that does not allow it), and runs one at a time: a call while another runs
// gets 429 with Retry-After.
func TestVerifyOneAtATimeBehindAdmin(t *testing.T) {
	n, err := node.Open(node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	auth := &adminStub{asked: new(access.Scope)}
	s := NewServer(n, nil, auth)
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
		{fmt.Errorf("%w: send a token", access.ErrNoCredential), 401},
		{fmt.Errorf("%w: this token may not run verify", access.ErrForbidden), 403},
		{nil, 200},
	} {
		auth.err = c.err
		code, _, body := get()
		if code != c.code || *auth.asked != access.Admin {
			t.Errorf("Authorize returning %v: %d %s (asked for %v), want %d", c.err, code, body, *auth.asked, c.code)
		}
		if c.err != nil && (json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, strings.SplitN(c.err.Error(), ": ", 2)[1])) {
			t.Errorf("Authorize returning %v: body %s, want its sentence", c.err, body)
		}
	}
}
