package ringledger

import (
	"context"
	"time"
)

// The one retry policy of the package. Calls to peers make one attempt each
// (the Ring's Call does not retry), so a failed request ran at most once, and
// the caller knows it: a put that may have run is resent marked Resend, and
// its owner answers with the record it already holds (ledger.Append). Work
// that has no waiting client (copies to replicas, pointer writes) is not
// retried here at all beyond a few rounds: the repair rounds (repair.go)
// restore whatever did not arrive.
const (
	retryBase = 50 * time.Millisecond // the pause before the first retry, then once more per attempt
	retryMax  = time.Second           // the longest pause
	// putRetryFor bounds how long Put keeps retrying readings whose owner
	// refused them (a ring change in progress) or did not answer.
	putRetryFor = 20 * time.Second
	// pointerRounds bounds the rounds of a background pointer write.
	pointerRounds = 5
)

// retryDelay is the pause before attempt (1, 2, ...).
func retryDelay(attempt int) time.Duration {
	return min(time.Duration(attempt)*retryBase, retryMax)
}

// pause waits before attempt, or returns ctx's error if it ends first.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(retryDelay(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// mayHaveRun reports whether a failed request may have been carried out by
// the peer: it did not answer (a timeout, a lost connection), or it failed
// part way. A refusal of any other code came before the peer changed
// anything.
func mayHaveRun(err error) bool {
	r := refusalOf(err)
	return r == nil || r.Code == CodeUnavailable
}
