//go:build !race

package driver_test

const raceSlowdown = 1
