using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace ShareHub.Broker.Data.Migrations.SqlServer
{
    /// <inheritdoc />
    public partial class CaseConcurrency : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<int>(
                name: "Revision",
                table: "cases",
                type: "int",
                nullable: false,
                defaultValue: 0);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "Revision",
                table: "cases");
        }
    }
}
