// Package dashboards builds the Grafana dashboards shipped in this folder.
// They are written from code so that every panel follows the same rules
// (datasource variable, units, exemplars, links to Homer) and the tests can
// check every query; `go generate ./dashboards` rewrites the JSON files.
//
//go:generate go run ./cmd/gendashboards
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// SchemaVersion is the dashboard schema of current Grafana (12.x).
const SchemaVersion = 42

// dsRef points every panel and query at the datasource variable: no
// datasource UID is hard-coded.
var dsRef = map[string]any{"type": "prometheus", "uid": "${datasource}"}

// Query is one PromQL target of a panel.
type Query struct {
	Expr   string
	Legend string
	// Instant asks for a single value (tables, stats).
	Instant bool
	// Exemplars shows exemplars (the Call-ID of a recent call).
	Exemplars bool
}

// Panel is a panel before layout.
type Panel struct {
	Type        string // timeseries, stat, table, heatmap
	Title       string
	Description string
	Unit        string
	Queries     []Query
	Width       int // of 24; default 12 (timeseries) or 4 (stat)
	Height      int
	Stacked     bool
	Min, Max    *float64
	// Links are panel-level data links.
	Links []Link
	// Columns renames table columns (field name -> display name); the
	// table joins its instant queries on their common labels.
	Columns map[string]string
	// Thresholds, low to high: colour steps after the base colour.
	Thresholds []Threshold
	BaseColor  string
	// Interval is the panel's minimum query step: a heatmap of increases
	// over that window then shows each stream once, not once per
	// overlapping window.
	Interval string
}

// Threshold is one colour step.
type Threshold struct {
	Value float64
	Color string
}

// Link is a data link.
type Link struct {
	Title, URL string
}

// Row groups panels under a title.
type Row struct {
	Title  string
	Panels []Panel
}

// Variable is a dashboard template variable.
type Variable struct {
	Name, Label string
	Query       string // label_values(...) for query variables
	Multi       bool
	Textbox     string // default of a textbox variable
	Hidden      bool
}

// Dashboard is one dashboard before rendering.
type Dashboard struct {
	UID, Title, Description string
	Tags                    []string
	Variables               []Variable
	Rows                    []Row
	Links                   []Link
}

func f(v float64) *float64 { return &v }

// JSON renders the dashboard as Grafana's JSON model, indented, with a
// trailing newline.
func (d Dashboard) JSON() ([]byte, error) {
	var panels []any
	id, y := 1, 0
	for _, r := range d.Rows {
		panels = append(panels, map[string]any{
			"type": "row", "title": r.Title, "id": id, "collapsed": false, "panels": []any{},
			"gridPos": map[string]any{"h": 1, "w": 24, "x": 0, "y": y},
		})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.Panels {
			w, h := p.Width, p.Height
			if w == 0 {
				w = 12
				if p.Type == "stat" {
					w = 4
				}
			}
			if h == 0 {
				h = 8
				if p.Type == "stat" {
					h = 4
				}
			}
			if x+w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			panels = append(panels, p.render(id, x, y, w, h))
			id++
			x += w
			rowH = max(rowH, h)
		}
		y += rowH
	}
	var vars []any
	vars = append(vars, map[string]any{
		"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
		"current": map[string]any{"text": "", "value": ""}, "hide": 0, "refresh": 1, "regex": "", "options": []any{},
	})
	for _, v := range d.Variables {
		vars = append(vars, v.render())
	}
	links := []any{map[string]any{
		"title": "SIPhon dashboards", "type": "dashboards", "tags": []string{"siphon"}, "asDropdown": true,
		"includeVars": true, "keepTime": true, "icon": "external link", "targetBlank": false, "tooltip": "", "url": "",
	}}
	for _, l := range d.Links {
		links = append(links, map[string]any{"title": l.Title, "type": "link", "url": l.URL, "targetBlank": true,
			"icon": "external link", "asDropdown": false, "includeVars": false, "keepTime": false, "tags": []string{}, "tooltip": ""})
	}
	m := map[string]any{
		"uid": d.UID, "title": d.Title, "description": d.Description, "tags": d.Tags,
		"schemaVersion": SchemaVersion, "version": 1, "editable": true, "graphTooltip": 1,
		"timezone": "browser", "refresh": "30s", "fiscalYearStartMonth": 0, "liveNow": false, "weekStart": "",
		"time":       map[string]any{"from": "now-3h", "to": "now"},
		"timepicker": map[string]any{},
		"templating": map[string]any{"list": vars},
		"annotations": map[string]any{"list": []any{map[string]any{
			"builtIn": 1, "datasource": map[string]any{"type": "grafana", "uid": "-- Grafana --"},
			"enable": true, "hide": true, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
			"type": "dashboard",
		}}},
		"links":  links,
		"panels": panels,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
	}
	return buf.Bytes(), nil
}

func (v Variable) render() map[string]any {
	hide := 0
	if v.Hidden {
		hide = 2
	}
	if v.Query == "" {
		return map[string]any{
			"type": "textbox", "name": v.Name, "label": v.Label, "query": v.Textbox, "hide": hide,
			"current": map[string]any{"text": v.Textbox, "value": v.Textbox},
			"options": []any{map[string]any{"selected": true, "text": v.Textbox, "value": v.Textbox}},
		}
	}
	m := map[string]any{
		"type": "query", "name": v.Name, "label": v.Label, "datasource": dsRef,
		"query":      map[string]any{"query": v.Query, "refId": "PrometheusVariableQueryEditor-VariableQuery", "qryType": 1},
		"definition": v.Query, "refresh": 2, "sort": 1, "hide": hide, "regex": "",
		"multi": v.Multi, "includeAll": v.Multi, "current": map[string]any{"text": "", "value": ""}, "options": []any{},
	}
	if v.Multi {
		m["allValue"] = ".*"
		m["current"] = map[string]any{"text": []string{"All"}, "value": []string{"$__all"}}
	}
	return m
}

func (p Panel) render(id, x, y, w, h int) map[string]any {
	var targets []any
	for i, q := range p.Queries {
		t := map[string]any{
			"datasource": dsRef, "refId": string(rune('A' + i)), "expr": q.Expr, "editorMode": "code",
			"legendFormat": q.Legend, "range": !q.Instant, "instant": q.Instant, "exemplar": q.Exemplars,
		}
		switch p.Type {
		case "table":
			t["format"] = "table"
		case "heatmap":
			// cumulative le buckets, which Grafana turns into per-bucket counts
			t["format"] = "heatmap"
		}
		if q.Legend == "" {
			t["legendFormat"] = "__auto"
		}
		targets = append(targets, t)
	}
	base := p.BaseColor
	if base == "" {
		base = "green"
	}
	steps := []any{map[string]any{"color": base, "value": nil}}
	for _, t := range p.Thresholds {
		steps = append(steps, map[string]any{"color": t.Color, "value": t.Value})
	}
	defaults := map[string]any{
		"unit":       p.Unit,
		"thresholds": map[string]any{"mode": "absolute", "steps": steps},
		"color":      map[string]any{"mode": "palette-classic"},
	}
	if p.Type != "timeseries" {
		defaults["color"] = map[string]any{"mode": "thresholds"}
	}
	if p.Min != nil {
		defaults["min"] = *p.Min
	}
	if p.Max != nil {
		defaults["max"] = *p.Max
	}
	if len(p.Links) > 0 {
		var links []any
		for _, l := range p.Links {
			links = append(links, map[string]any{"title": l.Title, "url": l.URL, "targetBlank": true})
		}
		defaults["links"] = links
	}
	m := map[string]any{
		"type": p.Type, "title": p.Title, "description": p.Description, "id": id,
		"gridPos":    map[string]any{"h": h, "w": w, "x": x, "y": y},
		"datasource": dsRef, "targets": targets,
	}
	if p.Interval != "" {
		m["interval"] = p.Interval
	}
	switch p.Type {
	case "timeseries":
		stacking := "none"
		if p.Stacked {
			stacking = "normal"
		}
		defaults["custom"] = map[string]any{
			"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": false,
			"stacking": map[string]any{"mode": stacking, "group": "A"},
		}
		m["options"] = map[string]any{
			"legend":  map[string]any{"displayMode": "table", "placement": "bottom", "showLegend": true, "calcs": []string{"lastNotNull", "max"}},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
	case "stat":
		m["options"] = map[string]any{
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode":     "background", "graphMode": "area", "justifyMode": "auto", "orientation": "auto",
			"textMode": "auto", "wideLayout": true, "showPercentChange": false, "percentChangeColorMode": "standard",
		}
	case "heatmap":
		// Buckets as the histogram has them (no recalculation); exemplars
		// are drawn on their cells.
		defaults["custom"] = map[string]any{"scaleDistribution": map[string]any{"type": "linear"},
			"hideFrom": map[string]any{"legend": false, "tooltip": false, "viz": false}}
		m["options"] = map[string]any{
			"calculate": false, "cellGap": 1, "showValue": "never", "selectionMode": "x",
			"color": map[string]any{"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange", "scale": "exponential",
				"exponent": 0.5, "steps": 64, "reverse": false},
			"filterValues": map[string]any{"le": 1e-9},
			"rowsFrame":    map[string]any{"layout": "auto"},
			"yAxis":        map[string]any{"axisPlacement": "left", "unit": p.Unit, "reverse": false},
			"cellValues":   map[string]any{"unit": "none"},
			"legend":       map[string]any{"show": true},
			"tooltip":      map[string]any{"mode": "single", "yHistogram": true, "showColorScale": false},
			"exemplars":    map[string]any{"color": "rgba(255,0,255,0.7)"},
		}
	case "table":
		m["options"] = map[string]any{"showHeader": true, "cellHeight": "sm", "frameIndex": 0,
			"footer": map[string]any{"show": false, "reducer": []string{"sum"}, "fields": ""}}
		defaults["custom"] = map[string]any{"align": "auto", "cellOptions": map[string]any{"type": "color-text"}, "inspect": false}
		rename := map[string]any{}
		exclude := map[string]any{"Time": true}
		for k, v := range p.Columns {
			rename[k] = v
		}
		m["transformations"] = []any{
			map[string]any{"id": "merge", "options": map[string]any{}},
			map[string]any{"id": "organize", "options": map[string]any{"excludeByName": exclude, "renameByName": rename,
				"indexByName": map[string]any{}}},
		}
	}
	m["fieldConfig"] = map[string]any{"defaults": defaults, "overrides": []any{}}
	return m
}
