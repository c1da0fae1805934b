package ledger

// CheckLink checks what a block proves together with its parent (nil: the block
// follows genesis): its own hash, branch and signature (Block.CheckSelf), its
// network, its number, its prev and its proof of mining. It is the check Verify and
// Ingest make on every block, for tools that read blocks from elsewhere (an
// auditor walking the ring's branches over HTTP).
func CheckLink(b, parent *Block, g *Genesis, proof ProofCheck) error {
	return checkLink(b, parent, g, proof)
}
