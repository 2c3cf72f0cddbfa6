import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter, NavLink, Route, Routes } from 'react-router-dom';
import { SearchPage } from './pages/SearchPage';
import { TracePage } from './pages/TracePage';
import { ComparePage } from './pages/ComparePage';
import { OfflinePage } from './pages/OfflinePage';
import { SamplingPage } from './pages/SamplingPage';
import { ServiceGraphPage } from './pages/ServiceGraphPage';
import { ServicesPage } from './pages/ServicesPage';
import { AlertsPage } from './pages/AlertsPage';
import { TenantPicker } from './components/TenantPicker';
import 'uplot/dist/uPlot.min.css';
import './styles.css';

function App() {
  return (
    <BrowserRouter>
      <header className="topbar">
        <NavLink to="/" className="brand">
          Clew
        </NavLink>
        <nav>
          <NavLink to="/" end>
            Search
          </NavLink>
          <NavLink to="/services">Services</NavLink>
          <NavLink to="/graph">Service graph</NavLink>
          <NavLink to="/alerts">Alerts</NavLink>
          <NavLink to="/compare">Compare</NavLink>
          <NavLink to="/sampling">Sampling</NavLink>
          <NavLink to="/offline">Open file</NavLink>
        </nav>
        <TenantPicker />
      </header>
      <main>
        <Routes>
          <Route path="/" element={<SearchPage />} />
          <Route path="/trace/:traceId" element={<TracePage />} />
          <Route path="/services" element={<ServicesPage />} />
          <Route path="/graph" element={<ServiceGraphPage />} />
          <Route path="/alerts" element={<AlertsPage />} />
          <Route path="/compare" element={<ComparePage />} />
          <Route path="/sampling" element={<SamplingPage />} />
          <Route path="/offline" element={<OfflinePage />} />
          <Route path="*" element={<p className="notice">No such page.</p>} />
        </Routes>
      </main>
    </BrowserRouter>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
