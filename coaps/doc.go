// Package coaps is the devices' CoAP over DTLS port (coaps://, RFC 7252
// §9.1, default UDP 5684): DTLS 1.2 with pre-shared keys (RFC 4279, the
// RFC 7925 IoT profile), as libcoap's OpenSSL and GnuTLS clients speak it.
// It runs the sessions and hands each decrypted datagram, with the PSK
// identity its session authenticated, to a Handler (the Web of Things'
// CoAP front, wot/coap); the Handler's replies go back encrypted on the
// same session. It knows nothing of CoAP itself.
//
// It is a listener of its own, apart from the peers' DTLS on the CoAP RPC
// port (package rpc), because the two authenticate differently (membership
// certificates there, keys here) and a pion configuration takes one or the
// other.
//
// The keys come from Config.PSK, identity by identity: an identity it has
// no key for (unknown, revoked, expired) fails the handshake, and so does a
// wrong key (the Finished messages do not verify).
//
// Bounds, for a 128 MB gateway (Limits): handshakes in progress, in all and
// per source IP; sessions, in all and per source IP; a handshake's time;
// a session's idle time. pion sends the HelloVerifyRequest cookie (RFC 6347
// §4.2.1), so a handshake whose source echoed it is verified: the source
// receives at its address. ClientHellos from one IP past HandshakesPerIP
// are dropped, so a flood from one address holds that many slots and
// nothing more. When the table is full, an unverified handshake older than
// a round trip (pushOutAge) gives way to a newer ClientHello, and any
// unverified one to the ClientHello of an address that had a session
// lately; a verified handshake never does.
//
// What this cannot do: the cookie exchange is pion's, so a source costs a
// pion connection (about 30 KB, for the handshake's timeout) before it has
// proved its address. A stateless cookie of this package's (as the peers'
// DTLS in package rpc has) cannot be handed to pion with the handshake
// message sequence numbers that OpenSSL and GnuTLS clients check. So a
// flood of ClientHellos forged from many addresses keeps a device that
// never had a session out for as long as it lasts, though not one that
// had.
//
// Files:
//
//	listener.go  Listener: the socket, the read loop, which record goes to which session
//	session.go   one source's DTLS connection: its handshake, then its datagrams
//	limits.go    Limits and their defaults
//	record.go    the little of DTLS's record layer the read loop looks at
package coaps
