package chord

// All interval tests on the ring go through betweenOpen, generic over the point
// type so that the tests can run the very same code on a tiny ring exhaustively.
// Only the order of points matters, never their arithmetic, so wrap-around is a
// matter of comparing the interval's ends.

// betweenOpen reports whether x lies in the open ring interval (a, b), walking
// clockwise from a. (a, a) is the whole ring except a, as in the Chord paper.
func betweenOpen[T comparable](cmp func(T, T) int, a, x, b T) bool {
	switch c := cmp(a, b); {
	case c < 0: // no wrap: a < x < b
		return cmp(a, x) < 0 && cmp(x, b) < 0
	case c > 0: // wraps past zero
		return cmp(a, x) < 0 || cmp(x, b) < 0
	default:
		return x != a
	}
}

// betweenRightIncl reports whether x lies in (a, b]; (a, a] is the whole ring.
func betweenRightIncl[T comparable](cmp func(T, T) int, a, x, b T) bool {
	return x == b || betweenOpen(cmp, a, x, b)
}

// betweenLeftIncl reports whether x lies in [a, b); [a, a) is the whole ring.
func betweenLeftIncl[T comparable](cmp func(T, T) int, a, x, b T) bool {
	return x == a || betweenOpen(cmp, a, x, b)
}

func cmpID(a, b ID) int { return a.Cmp(b) }

// Between reports whether x lies strictly inside the clockwise interval (a, b).
// Between(a, x, a) is true for every x but a.
func Between(a, x, b ID) bool { return betweenOpen(cmpID, a, x, b) }

// BetweenRightIncl reports whether x lies in the clockwise interval (a, b]: the
// keys a node b owns when its predecessor is a. (a, a] is the whole ring.
func BetweenRightIncl(a, x, b ID) bool { return betweenRightIncl(cmpID, a, x, b) }

// BetweenLeftIncl reports whether x lies in the clockwise interval [a, b).
func BetweenLeftIncl(a, x, b ID) bool { return betweenLeftIncl(cmpID, a, x, b) }
