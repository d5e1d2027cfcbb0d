'use strict';
// Valuetree's plotly.js: the core with only the traces its figures use.
var Plotly = require('plotly.js/lib/core');
Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/sunburst'),
    // Add a trace type here when a figure needs it (see ../README.md).
]);
module.exports = Plotly;
