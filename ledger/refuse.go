package ledger

// A branch whose owner equivocated (signed two checkpoints that do not extend each
// other: package checkpoint) may be rewriting its history; Ingest takes no new block
// of it from then on. What the store already holds of it stays, and keeps being
// served: those blocks are the history its witnesses cosigned.

// RefuseBranch makes Ingest refuse every block of branch not already stored, giving
// why. It lasts until the ledger is closed; the caller, which keeps the evidence,
// refuses again on the next start.
func (l *Ledger) RefuseBranch(branch Key, why string) {
	l.refusedMu.Lock()
	defer l.refusedMu.Unlock()
	if l.refused == nil {
		l.refused = map[Key]string{}
	}
	l.refused[branch] = why
}

// Refused says whether blocks of branch are refused, and why.
func (l *Ledger) Refused(branch Key) (why string, refused bool) {
	l.refusedMu.Lock()
	defer l.refusedMu.Unlock()
	why, refused = l.refused[branch]
	return why, refused
}
