// An independent verifier of activity-gateway's log, built on Go's own
// golang.org/x/mod/sumdb/note (C2SP signed notes) and sumdb/tlog (RFC 6962 /
// 9162 Merkle trees and proofs): none of the gateway's code. The test suite
// builds it from Debian's golang-golang-x-mod-dev and feeds it, on stdin, what
// the server answered; it prints one line per check and exits 1 on the first
// that fails.
//
// Input (JSON): {"key": verifier key, "origin": expected origin,
//   "checkpoints": [signed note, ...],
//   "inclusions": [{"event": REST activity object, "log_index": n,
//                   "leaf_hash": b64, "audit_path": [b64...], "note": signed note}],
//   "consistencies": [{"old": note, "new": note, "hashes": [b64...]}]}
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Event     json.RawMessage `json:"event"`
	LogIndex  int64           `json:"log_index"`
	LeafHash  string          `json:"leaf_hash"`
	AuditPath []string        `json:"audit_path"`
	Note      string          `json:"note"`
}

type consistency struct {
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Hashes []string `json:"hashes"`
}

type input struct {
	Key           string        `json:"key"`
	Origin        string        `json:"origin"`
	Checkpoints   []string      `json:"checkpoints"`
	Inclusions    []inclusion   `json:"inclusions"`
	Consistencies []consistency `json:"consistencies"`
}

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func hash(b64 string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != tlog.HashSize {
		fail("not a base64 SHA-256: %q", b64)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

// open checks a note's signature and reads its C2SP tlog-checkpoint body.
func open(verifiers note.Verifiers, origin, text string) (int64, tlog.Hash) {
	n, err := note.Open([]byte(text), verifiers)
	if err != nil {
		fail("note does not verify: %v\n%s", err, text)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		fail("not a checkpoint: %q", n.Text)
	}
	if lines[0] != origin {
		fail("origin %q, expected %q", lines[0], origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		fail("bad tree size %q", lines[1])
	}
	return size, hash(lines[2])
}

// canonical is RFC 8785 for what REST answers hold (strings, integers,
// booleans, null, objects, arrays): members sorted, no white space, no HTML
// escaping, numbers as written.
func canonical(raw json.RawMessage) []byte {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v interface{}
	if err := dec.Decode(&v); err != nil {
		fail("event is not JSON: %v", err)
	}
	var out bytes.Buffer
	write(&out, v)
	return out.Bytes()
}

func write(out *bytes.Buffer, v interface{}) {
	switch x := v.(type) {
	case map[string]interface{}:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				out.WriteByte(',')
			}
			write(out, k)
			out.WriteByte(':')
			write(out, x[k])
		}
		out.WriteByte('}')
	case []interface{}:
		out.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				out.WriteByte(',')
			}
			write(out, e)
		}
		out.WriteByte(']')
	case string:
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		enc.Encode(x)
		out.Truncate(out.Len() - 1) // Encode's newline
	case json.Number:
		out.WriteString(x.String())
	case bool:
		out.WriteString(strconv.FormatBool(x))
	case nil:
		out.WriteString("null")
	}
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("input: %v", err)
	}
	verifier, err := note.NewVerifier(in.Key)
	if err != nil {
		fail("verifier key %q: %v", in.Key, err)
	}
	verifiers := note.VerifierList(verifier)
	for _, c := range in.Checkpoints {
		size, root := open(verifiers, in.Origin, c)
		fmt.Printf("ok checkpoint %d %s\n", size, root)
	}
	for _, p := range in.Inclusions {
		size, root := open(verifiers, in.Origin, p.Note)
		leaf := tlog.RecordHash(canonical(p.Event))
		if leaf != hash(p.LeafHash) {
			fail("leaf of event %d: recomputed %s, server %s", p.LogIndex, leaf, p.LeafHash)
		}
		proof := make(tlog.RecordProof, len(p.AuditPath))
		for i, h := range p.AuditPath {
			proof[i] = hash(h)
		}
		if err := tlog.CheckRecord(proof, size, root, p.LogIndex, leaf); err != nil {
			fail("inclusion of %d in %d: %v", p.LogIndex, size, err)
		}
		fmt.Printf("ok inclusion %d in %d\n", p.LogIndex, size)
	}
	for _, c := range in.Consistencies {
		oldSize, oldRoot := open(verifiers, in.Origin, c.Old)
		newSize, newRoot := open(verifiers, in.Origin, c.New)
		proof := make(tlog.TreeProof, len(c.Hashes))
		for i, h := range c.Hashes {
			proof[i] = hash(h)
		}
		if err := tlog.CheckTree(proof, newSize, newRoot, oldSize, oldRoot); err != nil {
			fail("consistency %d -> %d: %v", oldSize, newSize, err)
		}
		fmt.Printf("ok consistency %d -> %d\n", oldSize, newSize)
	}
}
