// GraphiQL against this server: queries and mutations over HTTP, subscriptions
// over graphql-transport-ws. The headers editor's JSON is sent with every
// request and, for subscriptions, as the connection_init payload, so the
// X-Api-Key entered there works for both.
(function () {
  var endpoint = new URL('/graphql', window.location.href);
  var socket = new URL(endpoint.href);
  socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';

  var fetcher = GraphiQL.createFetcher({ url: endpoint.href, subscriptionUrl: socket.href });

  var defaultHeaders = JSON.stringify({ 'X-Api-Key': 'agk_... (activity-gateway keys create --org ORG_ID)' }, null, 2);

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

  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: defaultHeaders,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers'
    })
  );
})();
