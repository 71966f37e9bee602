/*
 * Sortable result tables: a click (or Enter) on a column header of a table inside
 * div.result-table sorts its rows; a second click reverses the order. tablesort is
 * served from assets/vendor/tablesort (copied from npm; no CDN).
 *
 * A column whose cells all start with a number ("0.950 [0.900, 0.990]", "12", "-0.3",
 * "inf") or are missing ("n/a", "", "-") sorts by that leading number; any other column
 * sorts as text. Missing values stay at the bottom in both directions.
 */
(function () {
  "use strict";

  var LEADING_NUMBER = /^\s*([-+\u2212]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+\u2212]?inf)/i;
  var MISSING = /^\s*(?:n\/a|nan|-|\u2014|)\s*$/i;

  function isMissing(text) {
    return MISSING.test(text);
  }

  function leadingNumber(text) {
    var match = LEADING_NUMBER.exec(text);
    if (!match) {
      return NaN;
    }
    var token = match[1].replace("\u2212", "-").toLowerCase();
    if (token.slice(-3) === "inf") {
      return token.charAt(0) === "-" ? -Infinity : Infinity;
    }
    return parseFloat(token);
  }

  function cellText(row, column) {
    var cell = row.cells[column];
    return cell ? cell.textContent : "";
  }

  // tablesort's convention: the comparison sorts descending; ascending is its reverse.
  // Missing cells compare lowest here and are moved to the bottom after every sort.
  function compareNumbers(a, b) {
    var x = isMissing(a) ? -Infinity : leadingNumber(a);
    var y = isMissing(b) ? -Infinity : leadingNumber(b);
    if (x === y) {
      return 0;
    }
    return x < y ? 1 : -1;
  }

  function isNumericColumn(body, column) {
    var numbers = 0;
    for (var i = 0; i < body.rows.length; i++) {
      var text = cellText(body.rows[i], column);
      if (isMissing(text)) {
        continue;
      }
      if (isNaN(leadingNumber(text))) {
        return false;
      }
      numbers++;
    }
    return numbers > 0;
  }

  function missingLast(table, header) {
    var column = header.cellIndex;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.slice.call(body.rows)
        .filter(function (row) { return isMissing(cellText(row, column)); })
        .forEach(function (row) { body.appendChild(row); });
    });
  }

  function makeSortable(table) {
    if (table.hasAttribute("data-sortable") || !table.tHead || !table.tBodies.length) {
      return;
    }
    table.setAttribute("data-sortable", "");
    var headers = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(headers, function (header) {
      if (isNumericColumn(table.tBodies[0], header.cellIndex)) {
        header.setAttribute("data-sort-method", "leading-number");
      }
    });
    var sorter = new Tablesort(table);
    table.addEventListener("afterSort", function () {
      if (sorter.current && sorter.current.getAttribute("data-sort-method") === "leading-number") {
        missingLast(table, sorter.current);
      }
    });
  }

  // The pattern is never matched: numeric columns are marked above from all their cells,
  // not from the first three as tablesort's own detection would.
  Tablesort.extend("leading-number", function () { return false; }, compareNumbers);

  function init(root) {
    root.querySelectorAll("div.result-table table").forEach(makeSortable);
  }

  if (typeof document$ !== "undefined") {
    document$.subscribe(function (doc) { init(doc.body); });
  } else {
    document.addEventListener("DOMContentLoaded", function () { init(document.body); });
  }
})();
