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
// a session's idle time. A source must echo a HelloVerifyRequest cookie
// (pion sends it) before its handshake counts as verified: one that has not
// can be pushed out by a newer ClientHello when the handshake slots are
// full, so that ClientHellos from forged sources, which never echo, cannot
// hold the slots against real devices; a verified handshake is never pushed
// out. Per source IP, a flood from one address holds at most
// HandshakesPerIP slots.
//
// Files:
//
//	listener.go  Listener: the socket, the read loop, which record goes to which session
//	session.go   one source's DTLS connection: its handshake, then its datagrams
//	limits.go    Limits and their defaults
//	record.go    the little of DTLS's record layer the read loop looks at
package coaps
