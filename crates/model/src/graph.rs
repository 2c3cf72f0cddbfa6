//! Vocabulary of the service dependency graph, shared by the live metrics (processors) and the graph computed
//! from stored traces (analysis), so both name edges the same way.

/// What kind of connection an edge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Connection {
    /// A client/server call.
    Request,
    /// A producer/consumer hop through a queue.
    Messaging,
    /// A call to a database (a virtual node named after it).
    Database,
    /// A call to a peer that sent no server span (a virtual node).
    Virtual,
}

impl Connection {
    /// The `connection_type` label value (empty for a plain request), as the collector's servicegraph connector.
    pub fn label(self) -> &'static str {
        match self {
            Connection::Request => "",
            Connection::Messaging => "messaging_system",
            Connection::Database => "database",
            Connection::Virtual => "virtual_node",
        }
    }
}
