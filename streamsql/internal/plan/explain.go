package plan

import (
	"fmt"
	"strings"
)

// Explain renders the plan as an indented operator tree, the output first.
func (q *Query) Explain() string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	var cols []string
	for i, c := range q.Columns {
		cols = append(cols, fmt.Sprintf("%s %s := %s", c.Name, c.Type, q.Project[i].Text))
	}
	kind := "push"
	if q.Pull {
		kind = "pull"
	}
	add("Query (%s) %s", kind, q.emit())
	if q.Limit > 0 {
		add("Limit %d", q.Limit)
	}
	if q.PartitionBy != nil {
		add("PartitionBy %s", q.PartitionBy.Text)
	}
	add("Project %s", strings.Join(cols, ", "))
	if q.Having != nil {
		add("Filter (having) %s", q.Having.Text)
	}
	if a := q.Agg; a != nil {
		var keys, calls []string
		for _, k := range a.Keys {
			keys = append(keys, k.Text)
		}
		for _, c := range a.Calls {
			calls = append(calls, c.Text+" "+c.T.String())
		}
		w := "none"
		if a.Window != nil {
			w = a.Window.String()
		}
		add("Aggregate keys=[%s] calls=[%s] window=%s retract=%v", strings.Join(keys, ", "), strings.Join(calls, ", "), w, a.Retract)
	}
	if q.Where != nil {
		add("Filter %s", q.Where.Text)
	}
	if j := q.Join; j != nil {
		kind := []string{"INNER", "LEFT", "RIGHT", "FULL"}[j.Kind]
		if j.Tables {
			add("Join %s table–table %s = %s", kind, j.LeftKey.Text, j.RightKey.Text)
		} else if j.StreamTable() {
			add("Join %s stream–table %s = %s (lookup in %s)", kind, j.LeftKey.Text, j.RightKey.Text, j.Right.Name)
		} else {
			add("Join %s stream–stream %s = %s within %s", kind, j.LeftKey.Text, j.RightKey.Text, j.Within)
		}
	}
	switch {
	case q.Pull && q.PullKey != nil:
		add("Lookup %s key=%s", q.Source.Name, q.PullKey)
	case q.Pull:
		add("TableScan %s", q.Source.Name)
	default:
		ts := "commit time"
		if q.Source.TimestampCol >= 0 {
			ts = q.Source.Columns[q.Source.TimestampCol].Name
		}
		name := q.Source.Name
		if q.Join != nil {
			name += " + " + q.Join.Right.Name
		}
		add("Scan %s (%s) rowtime=%s", name, q.ReadInput(), ts)
	}
	for i := range lines {
		lines[i] = strings.Repeat("  ", i) + lines[i]
	}
	return strings.Join(lines, "\n")
}

func (q *Query) emit() string {
	switch {
	case q.Pull:
		if q.AtPosition > 0 {
			return fmt.Sprintf("at position %d", q.AtPosition)
		}
		return "current state"
	case q.Emit == 2:
		return "EMIT FINAL"
	}
	return "EMIT CHANGES"
}
