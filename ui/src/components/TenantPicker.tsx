// The tenant the UI reads as (sent as X-Scope-OrgID); empty means the server's default tenant.
import { useState } from 'react';
import { getTenant, setTenant } from '../lib/api';

export function TenantPicker() {
  const [value, setValue] = useState(getTenant);
  const apply = () => {
    if (value.trim() === getTenant()) return;
    setTenant(value.trim());
    window.location.reload(); // every view reloads its data for the new tenant
  };
  return (
    <input
      className="tenant"
      aria-label="tenant"
      placeholder="tenant (default)"
      title="Tenant (X-Scope-OrgID)"
      value={value}
      onChange={(e) => setValue(e.target.value)}
      onBlur={apply}
      onKeyDown={(e) => e.key === 'Enter' && apply()}
    />
  );
}
