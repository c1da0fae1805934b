// Package minertest provides a hand-driven Ticker and an in-memory Chain that checks every
// block it is given, for tests of the miner and of code that runs one.
package minertest
