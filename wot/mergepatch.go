package wot

// mergePatch applies a JSON Merge Patch (RFC 7396) to target and returns the
// result: an object patch merges member by member (null removes a member),
// anything else replaces the target. target may be modified.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for name, value := range p {
		if value == nil {
			delete(t, name)
			continue
		}
		t[name] = mergePatch(t[name], value)
	}
	return t
}
