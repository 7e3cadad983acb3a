package strictyaml

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Pos is a position in a scenario file. Line and Column count from 1; a zero
// Line means the position is unknown (for example a command-line flag).
type Pos struct {
	File   string
	Line   int
	Column int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// PosOf returns the position of n in file.
func PosOf(file string, n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: file}
	}
	return Pos{File: file, Line: n.Line, Column: n.Column}
}

// Diagnostic is one problem found in a scenario, at a position.
type Diagnostic struct {
	Pos     Pos
	Context string // what holds the problem, e.g. `step "wait" (sleep)`; may be empty
	Message string
}

func (d Diagnostic) Error() string {
	var b strings.Builder
	b.WriteString(d.Pos.String())
	b.WriteString(": ")
	if d.Context != "" {
		b.WriteString(d.Context)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every problem found in one or more scenario files, in file
// order. It is an error when it holds at least one problem.
type Diagnostics []Diagnostic

// maxShown bounds the problems an error lists; past the first ones, more
// lines help nobody read the ones that matter.
const maxShown = 50

func (ds Diagnostics) Error() string {
	lines := make([]string, 0, min(len(ds), maxShown+1))
	for i, d := range ds {
		if i == maxShown {
			lines = append(lines, fmt.Sprintf("… and %d more problems", len(ds)-maxShown))
			break
		}
		lines = append(lines, d.Error())
	}
	return strings.Join(lines, "\n")
}

// Err returns ds sorted by position as an error, or nil when it is empty.
func (ds Diagnostics) Err() error {
	if len(ds) == 0 {
		return nil
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ds
}

// Diags collects diagnostics for one file under a context.
type Diags struct {
	File    string
	context string
	List    *Diagnostics
	work    *budget // shared by every copy
}

// budget bounds the nodes decoded, so that aliases cannot expand a small
// document without bound.
type budget struct {
	spent, limit int
}

// NewDiags returns diagnostics of file that go to list. Decoding may visit
// twice the nodes written in root and maxAliasNodes more through aliases.
func NewDiags(file string, root *yaml.Node, list *Diagnostics) Diags {
	return Diags{File: file, List: list, work: &budget{limit: 2*countNodes(root) + maxAliasNodes}}
}

// maxAliasNodes bounds the nodes aliases may add to a document; a scenario
// written by hand stays far below it.
const maxAliasNodes = 100_000

// countNodes counts the nodes written under n, an alias as one.
func countNodes(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	count, stack := 0, []*yaml.Node{n}
	for len(stack) > 0 {
		n, stack = stack[len(stack)-1], stack[:len(stack)-1]
		count++
		stack = append(stack, n.Content...)
	}
	return count
}

// Spend counts one decoded node and reports false once the budget is gone.
func (d Diags) Spend(n *yaml.Node) bool {
	if d.work.spent++; d.work.spent == d.work.limit {
		d.At(n, "aliases expand the document to more than %d nodes", d.work.limit)
	}
	return d.work.spent < d.work.limit
}

// At reports a problem at n. Once the node budget is gone, it reports
// nothing more: what was left undecoded would only raise false alarms.
func (d Diags) At(n *yaml.Node, format string, args ...any) {
	if d.work != nil && d.work.spent > d.work.limit {
		return
	}
	*d.List = append(*d.List, Diagnostic{Pos: PosOf(d.File, n), Context: d.context, Message: fmt.Sprintf(format, args...)})
}

func (d Diags) Within(context string) Diags {
	d.context = context
	return d
}

// Suggest returns the candidate nearest to word when it is close enough to be
// a likely typo, else "".
func Suggest(word string, candidates []string) string {
	best, bestDist := "", len(word)/2+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(word), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (with adjacent
// transpositions) between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// UnknownKey formats the message for a key that is not allowed.
func UnknownKey(key string, allowed []string) string {
	msg := fmt.Sprintf("unknown key %q", key)
	if s := Suggest(key, allowed); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg + "; allowed: " + strings.Join(allowed, ", ")
}
