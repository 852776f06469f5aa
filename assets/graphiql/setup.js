// GraphiQL against this server: queries and mutations over HTTP, subscriptions
// over graphql-transport-ws. The headers editor's JSON is sent with every
// request and, for subscriptions, as the connection_init payload, so the
// X-Api-Key entered there works for both.
(function () {
  var endpoint = new URL('/graphql', window.location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

  var fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });

  var defaultHeaders = JSON.stringify({
    'X-Api-Key': 'agk_... (the key `serve --demo` printed, or a new one: activity-gateway keys create --org ORG_ID --role viewer)'
  }, null, 2);

  // Whether the headers hold a credential rather than the placeholder: the
  // schema is fetched only then, so the page does not open on a 401.
  function hasCredential(text) {
    var headers;
    try { headers = JSON.parse(text || '{}'); } catch (e) { return false; }
    var real = function (value) {
      return typeof value === 'string' && value.trim() !== '' && value.indexOf('...') === -1;
    };
    return Object.keys(headers || {}).some(function (name) {
      var lower = name.toLowerCase();
      return (lower === 'x-api-key' || lower === 'authorization') && real(headers[name]);
    });
  }

  var defaultQuery = [
    '# Put an API key in the headers editor below, then run this query.',
    '# For the live tail, try:',
    '#   subscription { activityAdded(orgId: "org_acme") { cursor node { timestamp action path statusCode } } }',
    '',
    'query Recent {',
    '  viewer {',
    '    org {',
    '      id',
    '      name',
    '      activity(first: 5) {',
    '        totalCount',
    '        nodes { timestamp action path statusCode durationMs user { name } }',
    '      }',
    '    }',
    '  }',
    '}',
    ''
  ].join('\n');

  function Playground() {
    var credential = React.useState(hasCredential(defaultHeaders));
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: defaultHeaders,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
      // null: no introspection yet; undefined: GraphiQL introspects (again
      // whenever a credential appears).
      schema: credential[0] ? undefined : null,
      onEditHeaders: function (text) { credential[1](hasCredential(text)); }
    });
  }

  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(Playground));
})();
